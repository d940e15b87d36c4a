"""The main job brings its chain: `depai launch` starts the pinned anvil, deploys, funds the robots
and the requester, the robots' identity nodes register through their wallets, and the chain is
stopped with the launch — Ctrl-C, or a `kill -9` of the launcher (nothing left running). The
state persists across launches (balances, DIDs, stakes); `--fresh` starts a new chain.

Real processes: the launcher, anvil, the wallet / identity / listener / status nodes over DDS.
The perception stack is left out (`--only`): this test is about the chain's life, not driving.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from launchkit import REPO, REQUESTER, ROBOT1, ROBOT2, STACK, TOKEN, Launch, alive, pids_in, wait_for, wait_gone

from depai_nodes.bringup.stack import load_stack
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import load_config
from depai_nodes.chain.fleet import Fleet

ONLY = "dao_listener,status,wallet,identity,requester_wallet,requester"
if any(n.name == "lifecycle_manager" for n in load_stack(STACK).nodes):
    ONLY += ",lifecycle_manager"  # the chain-facing nodes are managed: it configures and activates them
REQUESTER_SETS = ["--set", "requester.period=2.0", "--set", "requester.start_delay=1.0", "--set", "requester.max_tasks=3"]


def chain_launch(tmp_path: Path, name: str, *extra: str) -> Launch:
    """The chain's nodes only (no driving), on a new chain on a free port, with a quick requester."""
    return Launch(tmp_path, name, "--only", ONLY, "--chain-port", "0", "--vote-at", "0", "--set", "identity.period=1.0",
                  *REQUESTER_SETS, *extra)


def standing(cfg_path: Path):
    fleet = Fleet(ChainClient(load_config(cfg_path)))
    token = fleet.token
    return {a: (token.call("balanceOf", a), fleet.machine_info(a).stake) for a in (ROBOT1, ROBOT2, REQUESTER)}, fleet


def requester_funds(fleet: Fleet) -> int:
    """The requester's balance plus the rewards its tasks escrowed, read at one block (posts go on meanwhile)."""
    block = fleet.client.block_number()
    count = fleet.market.call("taskCount", block=block)
    escrowed = sum(fleet.market.call("getTask", i, block=block)["reward"] for i in range(1, count + 1))
    return fleet.token.call("balanceOf", REQUESTER, block=block) + escrowed


def fleet_of(cfg_path: Path) -> Fleet:
    return Fleet(ChainClient(load_config(cfg_path)))


def test_launch_brings_funds_persists_and_stops_its_chain(ros_domain, tmp_path):
    cfg_path = tmp_path / "chain.json"
    first = chain_launch(tmp_path, "first")
    try:
        anvil = first.anvil_pid()
        wait_for(first.log, r"funded (robot1|robot2|requester) ", 60, count=3)
        for robot in ("robot1", "robot2"):  # (the wallet and the identity node both log the step: wait for each robot's wallet)
            wait_for(first.log, rf"\[{robot}/wallet\].*registered in the TaskMarket with stake", 60)
        balances, fleet = standing(cfg_path)
        assert balances[ROBOT1] == (9900 * TOKEN, 100 * TOKEN) and balances[ROBOT2] == (9900 * TOKEN, 100 * TOKEN)
        assert requester_funds(fleet) == 100_000 * TOKEN  # funded once; its balance plus what its tasks escrow
        assert fleet.attribute(ROBOT1, b"depai:machine")["value"] == b"robot1"
        genesis = load_config(cfg_path).genesis_hash
        # the requester posts through its own wallet (key #9): goals at the world's stations, escrowed
        wait_for(first.log, r"posted task #3 to station", 60)
        wait_for(first.log, r"done posting: posted 3 task\(s\), the max_tasks set", 10)
        tasks = [fleet.task(i) for i in (1, 2, 3)]
        assert [t.station for t in tasks] == ["east_bay", "north_east_aisle", "north_west_aisle"]
        assert [(t.goal_x, t.goal_y, t.tolerance, t.reward) for t in tasks][0] == (12.0, 0.0, 0.5, 5 * TOKEN)
        assert all(t.requester == REQUESTER and t.status_name == "Open" for t in tasks)
        assert fleet.task_count() == 3
        assert standing(cfg_path)[0][REQUESTER] == ((100_000 - 15) * TOKEN, 0)  # 3 x 5 FLEET escrowed
        wait_for(first.log, r"\[status\] tasks  posted 3  open 3", 30)  # the table, as plain lines in a log
        time.sleep(1.5)  # the state file is dumped every second
    finally:
        code = first.stop()
    assert code == 0, first.text()[-3000:]
    assert not wait_gone([anvil, *pids_in(first.log)]), "processes left running after Ctrl-C"
    assert "== DePAI run summary" in first.text() and "stopped the local chain" in first.text()
    assert (cfg_path.parent / "chain.json.anvil" / "state.json").is_file()

    second = chain_launch(tmp_path, "second")  # a relaunch restores the same chain: nothing funded twice
    try:
        anvil = second.anvil_pid()
        wait_for(second.log, r"restored the chain", 60)
        wait_for(second.log, r"robot1 \(0x[0-9a-fA-F]{40}, demo key #1\) holds 9,900 FLEET \+ 100 staked", 30)
        wait_for(second.log, r"launching \d+ node", 30)
        assert "funded" not in second.text()
        assert load_config(cfg_path).genesis_hash == genesis
        assert standing(cfg_path)[0][ROBOT1] == (9900 * TOKEN, 100 * TOKEN)
        # the restarted requester asks again with the same ids: its wallet's ledger answers them, nothing is posted twice
        wait_for(second.log, r"task #\d+ \(task-[0-9a-f]{8}-\d\) was already posted", 60, count=3)
        wait_for(second.log, r"done posting", 10)
        assert fleet_of(cfg_path).task_count() == 3
        wait_for(second.log, r"started robot1/identity", 30)
        # the table tells this run from the restored chain's past: the 3 tasks are the first run's
        wait_for(second.log, r"\[status\] tasks  posted 3 .*\(before this run, below block \d+: 3 posted, 0 paid, \d+ batches", 30)
        nodes = pids_in(second.log)
        os.kill(second.process.pid, signal.SIGKILL)  # the launcher crashes: its nodes and its chain go with it
        second.process.wait(10)
        assert not wait_gone([anvil, *nodes], 20), "a kill -9 of the launcher left processes running"
    finally:
        if second.process.poll() is None:
            second.stop()

    third = chain_launch(tmp_path, "third", "--fresh")  # a new chain, deliberately
    try:
        anvil = third.anvil_pid()
        wait_for(third.log, r"funded (robot1|robot2|requester) ", 60, count=3)
        assert load_config(cfg_path).genesis_hash != genesis
        # the nodes are up (a Ctrl-C while a node still imports ends it with a KeyboardInterrupt traceback)
        for robot in ("robot1", "robot2"):
            wait_for(third.log, rf"\[{robot}/wallet\].*registered in the TaskMarket with stake", 60)
    finally:
        code = third.stop()
    assert code == 0, third.text()[-3000:]
    assert not wait_gone([anvil, *pids_in(third.log)])
    assert "Traceback" not in first.text() + second.text() + third.text()
    assert json.loads(cfg_path.read_text())["chain_id"] == 31337


def test_a_chain_from_depai_chain_up_is_used_and_left_running(ros_domain, tmp_path):
    cfg_path = tmp_path / "chain.json"
    env = dict(os.environ, DEPAI_CHAIN_CONFIG=str(cfg_path))
    up = subprocess.run([sys.executable, "-m", "depai_nodes.cli", "chain", "up", "--config", str(cfg_path), "--port", "0"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    anvil = int(re.search(r"anvil pid (\d+)", up.stderr).group(1))
    try:
        launch = chain_launch(tmp_path, "optin", "--duration", "20")
        wait_for(launch.log, r"using the local chain started by `depai chain up` \(anvil pid \d+\)", 60)
        # chain up funded demo machines 1..3; the requester (#9) had nothing: only it is funded now
        wait_for(launch.log, r"funded requester ", 30)
        assert not re.search(r"funded robot", launch.text())
        assert launch.process.wait(timeout=90) == 0, launch.text()[-3000:]
        assert "stopped the local chain" not in launch.text()
        assert alive(anvil)  # not this launch's chain: it stays up
        assert requester_funds(fleet_of(cfg_path)) == 100_000 * TOKEN  # funded once (balance + what its tasks escrow)
    finally:
        subprocess.run([sys.executable, "-m", "depai_nodes.cli", "chain", "down", "--config", str(cfg_path)],
                       cwd=REPO, env=env, capture_output=True, timeout=60)
    assert not wait_gone([anvil])
