"""The view's Foxglove endpoint, checked as the Foxglove app would see it: a protocol client
(subprotocol foxglove.sdk.v1) against a real view node fed by the real simulator and policy."""

from __future__ import annotations

import math

from depai_nodes.view.fgclient import FoxgloveClient

SIM = {"world": "warehouse", "robots": ["robot1"], "lidar_beams": 32, "lidar_horizontal": 256, "lidar_rate": 5.0, "spawn_poses": []}


def test_channels_advertised_and_messages_decoded(start_node, ports):
    start_node("simulator", parameters=SIM)
    start_node("dao_listener", parameters={"policy_file": "package://depai/config/policy.yaml"})
    view = start_node("view", parameters={"robots": ["robot1"], "rerun": False, "foxglove_port": ports["foxglove_port"],
                                          "cloud_rate": 5.0, "use_sim_time": True})
    view.wait_for_log("Foxglove endpoint", timeout=30)
    url = f"ws://127.0.0.1:{ports['foxglove_port']}"
    with FoxgloveClient(url) as client:
        channels = client.wait_channels({"/tf", "/scene", "/map", "/robot1/cloud", "/plots"}, timeout=40)
        assert client.server_info is not None and client.server_info["name"] == "depai"
        assert channels["/scene"].schema_name == "foxglove.SceneUpdate" and channels["/scene"].encoding == "protobuf"
        assert channels["/robot1/cloud"].schema_name == "foxglove.PointCloud"
        for topic in ("/tf", "/scene", "/robot1/cloud", "/plots", "/map"):
            client.subscribe(channels[topic])
        seen: dict[str, list] = {}
        for channel, _, payload in client.messages(20.0):
            seen.setdefault(channel.topic, []).append(channel.decode(payload))
            entity_ids = {e.id for m in seen.get("/scene", []) for e in m.entities}
            tf_edges = {(t.parent_frame_id, t.child_frame_id) for m in seen.get("/tf", []) for t in m.transforms}
            if {"/tf", "/robot1/cloud", "/plots", "/map"} <= set(seen) and {"robot1/footprint", "keep_out", "stations"} <= entity_ids \
                    and ("robot1/base_link", "robot1/lidar_link") in tf_edges:
                break
    assert {"/tf", "/scene", "/robot1/cloud", "/plots", "/map"} <= set(seen), sorted(seen)
    # TF: the simulator's REP-105 tree, prefixed frames
    edges = {(t.parent_frame_id, t.child_frame_id) for m in seen["/tf"] for t in m.transforms}
    assert ("map", "robot1/odom") in edges and ("robot1/odom", "robot1/base_link") in edges
    # the cloud: x y z float32 in map, points on the warehouse's floor and walls, not garbage
    cloud = seen["/robot1/cloud"][-1]
    assert cloud.frame_id == "map" and cloud.point_stride == 12 and [f.name for f in cloud.fields] == ["x", "y", "z"]
    import numpy as np

    xyz = np.frombuffer(cloud.data, "<f4").reshape(-1, 3)
    assert len(xyz) > 500 and np.isfinite(xyz).all() and xyz[:, 2].min() > -0.5 and np.abs(xyz[:, :2]).max() < 60
    # the scene: the robot's footprint ring has the configured radius; the policy's keep-out zone is drawn
    entities = {e.id: e for m in seen["/scene"] for e in m.entities}
    ring = entities["robot1/footprint"].lines[0].points
    cx = sum(p.x for p in ring[:-1]) / (len(ring) - 1)
    cy = sum(p.y for p in ring[:-1]) / (len(ring) - 1)
    assert all(math.isclose(math.hypot(p.x - cx, p.y - cy), 0.3, abs_tol=1e-3) for p in ring)
    zone = entities["keep_out"]
    assert zone.lines and zone.texts[0].text.startswith("keep-out: ")
    assert len(entities["stations"].texts) >= 2
    # the speed series: JSON
    assert all({"robot", "what", "t", "value"} <= set(p) for p in seen["/plots"])
    assert {p["what"] for p in seen["/plots"]} == {"speed"}
    # latched content published before the client came (map, stations, static TF) is re-sent to it
    grid = seen["/map"][-1]
    assert grid.frame_id == "map" and grid.column_count > 100 and len(grid.data) % grid.column_count == 0
    cells = np.frombuffer(grid.data, np.uint8)
    assert 0.01 < (cells > 128).mean() < 0.5  # walls and shelves occupied, most of the floor free
    assert ("robot1/base_link", "robot1/lidar_link") in edges


def test_balance_and_batches_panels_from_the_economy_topics(start_node, ros_node, ports):
    """What the identity node (balance, read from the chain) and telemetry (anchor status) publish
    becomes the balance and batches series; a repeated CONFIRMED counts once, a bad balance is
    refused with a logged line and the node lives on."""
    from depai.msg import MachineIdentity, TxStatus
    from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

    view = start_node("view", parameters={"robots": ["robot1"], "rerun": False, "world": "", "foxglove_port": ports["foxglove_port"]})
    view.wait_for_log("Foxglove endpoint", timeout=30)
    identity = ros_node.publisher(MachineIdentity, "/robot1/identity", LATCHED_QOS)
    status = ros_node.publisher(TxStatus, "/robot1/anchor_status", RELIABLE_QOS)
    ros_node.wait_for_subscribers(status, timeout=20)
    ros_node.wait_for_subscribers(identity, timeout=20)  # latched depth 1: matched first, or only the last one arrives
    with FoxgloveClient(f"ws://127.0.0.1:{ports['foxglove_port']}") as client:
        client.subscribe(client.wait_channels({"/plots"}, timeout=20)["/plots"])
        # /identity is latched with depth 1: a second sample published before the view takes the
        # first replaces it, so the bad balance goes out only once the good one has been drawn.
        identity.publish(MachineIdentity(token_balance="9900500000000000000000"))
        got = []
        for channel, _, payload in client.messages(10.0):
            got.append(channel.decode(payload))
            if any(p["what"] == "balance" for p in got):
                break
        identity.publish(MachineIdentity(token_balance="12abc"))
        view.wait_for_log("cannot draw robot1/identity", timeout=20)
        for request_id, code in (("b1", TxStatus.SUBMITTED), ("b1", TxStatus.CONFIRMED), ("b1", TxStatus.CONFIRMED),
                                 ("b2", TxStatus.FAILED), ("b3", TxStatus.CONFIRMED)):
            status.publish(TxStatus(request_id=request_id, status=code))
        for channel, _, payload in client.messages(10.0):
            got.append(channel.decode(payload))
            if len([p for p in got if p["what"] == "batches"]) >= 5:
                break
    balances = [p["value"] for p in got if p["what"] == "balance"]
    batches = [p["value"] for p in got if p["what"] == "batches"]
    assert balances == [9900.5]
    assert batches == [0, 1, 1, 1, 2]
    assert "cannot draw robot1/identity: token balance '12abc' is not a decimal integer" in view.log()
    assert view.process.poll() is None
