"""The dao_listener node with source=chain: a real node process over real DDS follows the
FleetPolicy contract on the session's anvil and publishes /fleet/policy."""

import pytest
from chainkit import DEPLOYER, _as_timelock_sender, governance_round

from depai.msg import FleetPolicy
from depai_nodes.chain.config import save_config
from depai_nodes.chain.models import id32
from depai_nodes.common.qos import LATCHED_QOS


@pytest.mark.parametrize("transport", ["ws", "poll"])
def test_policy_changes_on_chain_reach_ros(chain, tmp_path, start_node, ros_node, transport):
    cfg_path = save_config(chain.config.model_copy(update={"event_poll_s": 0.1}), tmp_path / "chain.json")
    policy = chain.client(DEPLOYER).contract("FleetPolicy")
    node = start_node("dao_listener", parameters={"source": "chain", "chain_config": str(cfg_path),
                                                 "chain_transport": transport, "watch_period": 0.05})
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    first = inbox.wait_for(timeout=20)
    v0 = policy.call("version")
    assert first.version == v0 and first.max_speed == pytest.approx(1.5) and not first.paused
    assert first.source == f"chain:31337:{chain.config.genesis_hash[:10]}:{policy.address}" and first.header.frame_id == "map"
    assert first.min_task_price == str(10**18)

    policy.transact("setPaused", True)  # the guardian's e-stop: seen by the robots at once
    paused = inbox.wait_for(lambda m: m.paused, timeout=10)
    assert paused.version == v0 + 1

    send = _as_timelock_sender(chain, "FleetPolicy")
    send("setKeepOutZone", id32("dock"), [4000, 6000, 6000], [1000, 1000, 3000])
    zoned = inbox.wait_for(lambda m: len(m.keep_out_zones) == 1, timeout=10)
    assert zoned.keep_out_zones[0].id == "dock"
    assert [(p.x, p.y) for p in zoned.keep_out_zones[0].polygon.points] == [(4.0, 1.0), (6.0, 1.0), (6.0, 3.0)]

    # a policy DePAI's robots refuse (25 m/s is beyond Policy's 20 m/s limit) keeps the last valid one
    send("setMaxSpeed", 25_000)
    node.wait_for_log("keeping the last valid policy", timeout=10)
    assert all(m.max_speed < 20 for m in inbox.messages)
    assert node.process.poll() is None


def test_full_governance_round_reaches_ros(chain, tmp_path, start_node, ros_node):
    cfg_path = save_config(chain.config, tmp_path / "chain.json")
    start_node("dao_listener", parameters={"source": "chain", "chain_config": str(cfg_path), "watch_period": 0.05})
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    inbox.wait_for(timeout=20)
    governance_round(chain, [("FleetPolicy", "setMaxSpeed", (400,))], "slow the fleet to 0.4 m/s")
    msg = inbox.wait_for(lambda m: abs(m.max_speed - 0.4) < 1e-6, timeout=10)
    assert msg.source.startswith("chain:31337:")


def test_missing_chain_config_is_a_configuration_error(start_node, tmp_path):
    node = start_node("dao_listener", parameters={"source": "chain", "chain_config": str(tmp_path / "none.json")})
    assert node.wait_exit(timeout=20) == 2
    log = node.log()
    assert "parameter 'chain_config'" in log and "no chain config" in log and "Traceback" not in log
