"""The stack's chain-related description: namespaced fleet nodes, needs_chain / without_chain, robots."""

from pathlib import Path

import pytest

import json

from depai_nodes.bringup.chain import ChainLaunchError, _record_or_check_contracts, _wallet_demo_indices, resolve_network
from depai_nodes.bringup.stack import StackError, StackSpec, expand, load_stack, parse_robots, uses_chain, with_robots

REPO = Path(__file__).resolve().parents[2]


def stack(**extra) -> StackSpec:
    return StackSpec.model_validate({"robots": ["r1", "r2"], "nodes": [
        {"name": "listener", "concern": "dao_listener", "scope": "fleet", "parameters": {"source": "chain"},
         "without_chain": {"source": "file"}},
        {"name": "wallet", "concern": "wallet", "needs_chain": True, "parameters": {"demo_index": "$(robot_index)"}},
        {"name": "req_wallet", "node_name": "wallet", "concern": "wallet", "scope": "fleet", "namespace": "requester",
         "needs_chain": True, "parameters": {"demo_index": 9}},
        {"name": "agent", "concern": "agent"},
    ], **extra})


def test_a_namespaced_fleet_node_runs_under_its_ros_name_and_chain_nodes_drop_out_without_a_chain():
    s = stack()
    with_chain = expand(s, share_dir="/s")
    assert [i.fqn for i in with_chain] == ["/listener", "/r1/wallet", "/r2/wallet", "/requester/wallet", "/r1/agent", "/r2/agent"]
    req = next(i for i in with_chain if i.namespace == "requester")
    assert (req.name, req.entry, req.label, req.parameters["demo_index"]) == ("wallet", "req_wallet", "requester/wallet", 9)
    assert [i.parameters["demo_index"] for i in with_chain if i.fqn in ("/r1/wallet", "/r2/wallet")] == [1, 2]
    assert uses_chain(s, with_chain)
    without = expand(s, share_dir="/s", chain=False)
    assert [i.fqn for i in without] == ["/listener", "/r1/agent", "/r2/agent"]
    assert without[0].parameters["source"] == "file"
    assert not uses_chain(s, expand(s, share_dir="/s", only=["agent"]))
    assert uses_chain(s, expand(s, share_dir="/s", only=["listener"]))  # behaves differently with a chain
    assert _wallet_demo_indices([i for i in with_chain if i.concern == "wallet"]) == {
        "r1/wallet": 1, "r2/wallet": 2, "requester/wallet": 9}


@pytest.mark.parametrize("change, what", [
    ({"nodes": [{"name": "a", "concern": "x"}, {"name": "a", "concern": "y"}]}, "unique"),
    ({"nodes": [{"name": "a", "concern": "x", "namespace": "ns"}]}, "fleet-scoped"),
    ({"nodes": [{"name": "a", "concern": "x", "scope": "fleet", "namespace": "r1"}]}, "also a robot's"),
    ({"nodes": [{"name": "a", "concern": "x", "scope": "fleet", "node_name": "n"},
                {"name": "b", "concern": "y", "scope": "fleet", "node_name": "n"}]}, "two fleet nodes"),
    ({"nodes": [], "chain": {"port": 70000}}, "port"),
    ({"nodes": [], "chain": {"fund_robot": "-5"}}, "fund_robot"),
])
def test_invalid_stacks_are_refused(change, what):
    with pytest.raises(ValueError, match=what):
        StackSpec.model_validate({"robots": ["r1"], **change})


def test_robots_by_count_or_list_and_two_wallets_never_share_a_key():
    assert parse_robots("3") == ["robot1", "robot2", "robot3"]
    assert parse_robots("a, b") == ["a", "b"] and parse_robots(" ") is None
    for bad in ("0", "9"):
        with pytest.raises(StackError, match="between 1 and 8"):
            parse_robots(bad)
    shipped = with_robots(load_stack(REPO / "config" / "stack.yaml"), parse_robots("8"))
    wallets = [i for i in expand(shipped, share_dir="/s") if i.concern == "wallet"]
    assert sorted(_wallet_demo_indices(wallets).values()) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    clash = [w.model_copy(update={"parameters": {"demo_index": 9}}) if w.namespace == "robot1" else w for w in wallets]
    with pytest.raises(ChainLaunchError, match="both sign with demo key #9"):
        _wallet_demo_indices(clash)


def test_the_shipped_stack_runs_the_economy_by_default_and_patrols_without_a_chain():
    shipped = load_stack(REPO / "config" / "stack.yaml")
    assert shipped.robots == ["robot1", "robot2"] and shipped.chain.network == "local"
    fqns = {i.fqn for i in expand(shipped, share_dir="/s")}
    assert {"/robot1/wallet", "/robot2/identity", "/robot1/telemetry", "/requester/wallet", "/requester/requester", "/status"} <= fqns
    plain = expand(shipped, share_dir="/s", chain=False)
    assert not {"wallet", "identity", "telemetry", "requester"} & {i.concern for i in plain}
    assert next(i for i in plain if i.name == "dao_listener").parameters["source"] == "file"


def test_networks_resolve_by_name_or_file():
    assert resolve_network("agung", REPO) == REPO / "chain" / "networks" / "agung.yaml"
    assert resolve_network(str(REPO / "chain" / "networks" / "peaq.yaml"), REPO).name == "peaq.yaml"
    with pytest.raises(ChainLaunchError, match="known: agung, peaq"):
        resolve_network("mainnet", REPO)


def test_a_restored_chain_with_older_contract_builds_is_named(tmp_path):
    cfg = tmp_path / "chain.json"
    assert _record_or_check_contracts(cfg, deployed_now=False) == []  # not deployed by a launch: not checked
    assert _record_or_check_contracts(cfg, deployed_now=True) == []
    record = tmp_path / "chain.json.contracts.json"
    assert _record_or_check_contracts(cfg, deployed_now=False) == []  # the same builds
    digests = json.loads(record.read_text())
    assert {"TaskMarket", "FleetPolicy", "DataRegistry"} <= set(digests)
    record.write_text(json.dumps({**digests, "TaskMarket": "0" * 64}))
    assert _record_or_check_contracts(cfg, deployed_now=False) == ["TaskMarket"]
