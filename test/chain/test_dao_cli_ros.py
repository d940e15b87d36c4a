"""The DAO's command line to the robots: `./depai dao propose ... --now` (a real subprocess, a
full Governor round) and a real dao_listener process publishes the new speed limit and keep-out
zone on /fleet/policy over real DDS."""

import json
import subprocess

from depai.msg import FleetPolicy
from depai_nodes.chain.config import repo_root, save_config
from depai_nodes.common.qos import LATCHED_QOS


def test_cli_round_reaches_the_robots_policy_topic(chain, tmp_path, start_node, ros_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    start_node("dao_listener", parameters={"source": "chain", "chain_config": str(cfg), "watch_period": 0.05})
    inbox = ros_node.subscribe(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    first = inbox.wait_for(timeout=20)
    assert first.max_speed > 0.45 and not first.keep_out_zones
    zones = tmp_path / "dock.geojson"
    zones.write_text(json.dumps({"type": "Feature", "id": "dock", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[4, 1], [6, 1], [6, 3], [4, 3], [4, 1]]]}}))
    r = subprocess.run([str(repo_root() / "depai"), "dao", "propose", "--max-speed", "0.45", "--zones", str(zones), "--now",
                        "--config", str(cfg), "--key", "demo:11"], capture_output=True, text=True, timeout=120,
                       cwd=repo_root(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    msg = inbox.wait_for(lambda m: abs(m.max_speed - 0.45) < 1e-6 and len(m.keep_out_zones) == 1, timeout=15)
    assert msg.keep_out_zones[0].id == "dock"
    assert [(p.x, p.y) for p in msg.keep_out_zones[0].polygon.points] == [(4.0, 1.0), (6.0, 1.0), (6.0, 3.0), (4.0, 3.0)]
    assert msg.version >= first.version + 2
