"""The main job's mid-run DAO round (bringup/dao_round.py) against a real anvil with the real
contracts: a real Governor round (member proposes, members vote with delegated FLEET, queue,
timelock, execute), what it logs, no second vote for a decision already in force, the wait while
a robot holds a task inside the zone; and its plan from the stack file (unknown station, nothing
to vote) - the whole launch is test/system/test_economy_scenario.py."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from depai_nodes.bringup.dao_round import DaoRound, DaoRoundError, already_in_force, held_in_zone, plan_round, square
from depai_nodes.bringup.stack import DaoRoundSpec, StackError, load_stack

_CHAIN_TESTS = Path(__file__).resolve().parent.parent / "chain"
if str(_CHAIN_TESTS) not in sys.path:
    sys.path.insert(0, str(_CHAIN_TESTS))
_spec = importlib.util.spec_from_file_location("depai_chain_test_fixtures_bringup", _CHAIN_TESTS / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
anvil_node, deployed, chain = _fixtures.anvil_node, _fixtures.deployed, _fixtures.chain

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_stack_votes_mid_run_over_a_real_station():
    stack = load_stack(REPO / "config" / "stack.yaml")
    assert stack.dao_round.at > 0  # on in the demo
    plan = plan_round(stack.dao_round)
    assert plan.max_speed == stack.dao_round.max_speed and plan.zone_id == f"{stack.dao_round.station}_closed"
    from depai_nodes.common.stations import load_stations, stations_path_for

    station = next(s for s in load_stations(stations_path_for("warehouse")).stations if s.id == stack.dao_round.station)
    from depai_nodes.common.polygon import signed_distance

    assert float(signed_distance(list(plan.polygon), [station.x], [station.y])[0]) < -1.0  # well inside
    assert plan.station in plan.description and "0.40 m/s" in plan.description


def test_bad_round_configs_are_refused_with_why(tmp_path):
    with pytest.raises(DaoRoundError, match="no station 'moon_base'.*known: east_bay"):
        plan_round(DaoRoundSpec(at=10, station="moon_base"))
    with pytest.raises(DaoRoundError, match="nothing to vote for"):
        plan_round(DaoRoundSpec(at=0, max_speed=None))
    stack = (REPO / "config" / "stack.yaml").read_text().replace("  max_speed: 0.4 ", "  max_speed: -1 ", 1)
    assert "max_speed: -1" in stack
    (tmp_path / "stack.yaml").write_text(stack)
    with pytest.raises(StackError, match="max_speed"):
        load_stack(tmp_path / "stack.yaml")


def test_a_real_round_changes_the_policy_and_is_not_voted_twice(chain, tmp_path):
    from depai_nodes.chain import governance as g
    from depai_nodes.chain.config import save_config
    from depai_nodes.chain.fleet import read_policy

    cfg = save_config(chain.config, tmp_path / "chain.json")
    client = chain.client()
    before = read_policy(client)
    spec = DaoRoundSpec(at=0.01, max_speed=0.45, station="east_bay", zone_half_width=1.0)
    lines: list[str] = []
    dao = DaoRound(spec, spec.at, str(cfg), ["robot1"], lines.append, report_timeout=0.5).start()
    assert dao.join(timeout=60)
    text = "\n".join(lines)
    assert "error" not in dao.result, text
    after = read_policy(client)
    assert after.version > before.version and abs(after.max_speed - 0.45) < 1e-9
    assert [(z.id, [tuple(p) for p in z.polygon]) for z in after.keep_out_zones] == [("east_bay_closed", list(square(12.0, 0.0, 1.0)))]
    pid, tx, block = dao.result["proposal_id"], dao.result["tx"], dao.result["block"]
    assert g.state(client, g.find_proposal(client, pid)) == "Executed"
    receipt = client.rpc.call("eth_getTransactionReceipt", [tx])
    assert int(receipt["blockNumber"], 16) == block and int(receipt["status"], 16) == 1
    # the log names the proposal (id, description) and the execution (tx, block), and who voted
    assert f'executed proposal {pid} ("DePAI demo vote: slow the fleet to 0.45 m/s and close station east_bay' in text
    assert f"in block {block}, tx {tx}" in text and "voted for by 4 member(s)" in text
    assert f"policy v{before.version} -> v{after.version}" in text
    # no node reported (none runs here): said so, not claimed
    assert "no report of policy" in text and "robot1/controller" in text and "every robot enforces" not in text

    again: list[str] = []
    second = DaoRound(spec, spec.at, str(cfg), ["robot1"], again.append, report_timeout=0.5).start()
    assert second.join(timeout=30)
    assert second.result.get("skipped") and "no second vote" in "\n".join(again)
    assert read_policy(client).version == after.version


def _east_bay_task(chain):
    """(the registered machine's Fleet, the requester's Fleet, an open task at station east_bay)."""
    from chainkit import MACHINE, REQUESTER, registered_machine

    from depai_nodes.chain.deploy import TOKEN
    from depai_nodes.chain.fleet import Fleet

    machine = registered_machine(chain, MACHINE)
    if "admitMachines" in machine.market.abi.functions:
        Fleet(chain.client()).admit_machines([chain.address(MACHINE)])
    requester = Fleet(chain.client(REQUESTER))
    return machine, requester, requester.post_task(12.0, 0.2, 0.0, chain.now() + 3600, 5 * TOKEN, tolerance=0.5, station="east_bay")


def test_the_vote_waits_while_a_robot_holds_a_task_in_the_zone(chain, tmp_path):
    from chainkit import MACHINE

    from depai_nodes.chain.config import save_config
    from depai_nodes.chain.fleet import read_policy

    cfg = save_config(chain.config, tmp_path / "chain.json")
    machine, requester, task_id = _east_bay_task(chain)
    machine.accept_task(task_id)
    assert [t.id for t in held_in_zone(requester.tasks(), square(12.0, 0.0, 1.0))] == [task_id]
    assert held_in_zone(requester.tasks(), square(-12.0, 0.0, 1.0)) == []

    spec = DaoRoundSpec(at=0.01, max_speed=0.45, station="east_bay", zone_half_width=1.0, clear_for=1.0, max_wait=2.0)
    lines: list[str] = []
    version = read_policy(chain.client()).version
    started = time.monotonic()
    dao = DaoRound(spec, spec.at, str(cfg), ["robot1"], lines.append, {chain.address(MACHINE).lower(): "robot1"},
                   report_timeout=0.2).start()
    assert dao.join(timeout=60)
    text = "\n".join(lines)
    assert f"the vote waits: task {task_id} (east_bay) held by robot1" in text
    assert "voting although a robot held a task in the zone" in text  # max_wait passed: it votes anyway, and says so
    assert time.monotonic() - started >= 2.0
    assert read_policy(chain.client()).version > version


def test_already_in_force_compares_speed_and_zone():
    from depai_nodes.chain.models import KeepOutZone, PolicySnapshot

    plan = plan_round(DaoRoundSpec(at=1, max_speed=0.4, station="east_bay", zone_half_width=1.0))
    snap = lambda speed, zones: PolicySnapshot(version=3, updated_at_block=1, max_speed=speed, paused=False,  # noqa: E731
                                               min_task_price=0, spending_cap=0, keep_out_zones=zones)
    zone = KeepOutZone(id="east_bay_closed", polygon=list(square(12.0, 0.0, 1.0)))
    assert already_in_force(snap(0.4, [zone]), plan)
    assert not already_in_force(snap(0.5, [zone]), plan)
    assert not already_in_force(snap(0.4, []), plan)
    assert not already_in_force(snap(0.4, [KeepOutZone(id="east_bay_closed", polygon=list(square(12.0, 0.0, 2.0)))]), plan)


def test_a_task_taken_in_the_zone_while_the_round_runs_holds_the_execution(chain, tmp_path):
    """The round's propose/vote/queue take seconds: a robot that takes a task in the zone then
    (here: the moment the proposal is queued) is waited for again right before the execute tx."""
    from chainkit import MACHINE

    from depai_nodes.chain import governance as g
    from depai_nodes.chain.config import save_config
    from depai_nodes.chain.fleet import read_policy

    cfg = save_config(chain.config, tmp_path / "chain.json")
    machine, _, task_id = _east_bay_task(chain)
    lines: list[str] = []
    seen_at_queue: dict[str, int] = {}

    def say(line: str) -> None:
        lines.append(line)
        if line.startswith("queued in the timelock"):
            machine.accept_task(task_id)  # after the first check, before the execution
            seen_at_queue["version"] = read_policy(chain.client()).version

    spec = DaoRoundSpec(at=0.01, max_speed=0.45, station="east_bay", zone_half_width=1.0, clear_for=1.0, max_wait=2.0)
    version = read_policy(chain.client()).version
    dao = DaoRound(spec, spec.at, str(cfg), ["robot1"], say, {chain.address(MACHINE).lower(): "robot1"},
                   report_timeout=0.2).start()
    assert dao.join(timeout=60)
    text = "\n".join(lines)
    assert "error" not in dao.result, text
    queued = next(i for i, line in enumerate(lines) if line.startswith("queued in the timelock"))
    executed = next(i for i, line in enumerate(lines) if line.startswith("executed"))
    waits = [i for i, line in enumerate(lines) if line.startswith(f"the vote waits: task {task_id} (east_bay) held by robot1")]
    assert waits and queued < waits[0] < executed, text  # the wait came between the queue and the execution
    assert seen_at_queue["version"] == version < read_policy(chain.client()).version
    assert g.state(chain.client(), g.find_proposal(chain.client(), dao.result["proposal_id"])) == "Executed"


def test_local_round_leaves_the_proposal_queued_when_told_not_to_execute(chain):
    from depai_nodes.chain import governance as g
    from depai_nodes.chain.fleet import read_policy
    from depai_nodes.dao.core import ProposalChange, build_actions

    client = chain.client()
    version = read_policy(client).version
    actions = build_actions(client, ProposalChange(max_speed=0.42))
    p = g.local_round(client, actions, "slow to 0.42, not executed", before_execute=lambda: False)
    assert g.state(client, p) == "Queued" and read_policy(client).version == version
