"""The live view in a real browser: headless Chromium (WebGL on SwiftShader) opens the Rerun web
viewer the view node serves, first with nothing flowing (the empty viewer), then with the real
simulator and policy running; the 3D and 2D map regions must change from empty to drawn."""

from __future__ import annotations

import io
import os
import time

import numpy as np

from depai_nodes.view.browser import Browser

SIM = {"world": "warehouse", "robots": ["robot1"], "lidar_beams": 32, "lidar_horizontal": 512, "lidar_rate": 5.0, "spawn_poses": []}
SHOTS = os.environ.get("DEPAI_VIEW_SHOTS")  # a folder: keep the screenshots (debugging)


def _image(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _wait_drawn(browser: Browser, timeout: float) -> np.ndarray:
    """Screenshots until two in a row agree (the viewer has settled) or the time is up."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        time.sleep(4.0)
        shot = _image(browser.screenshot())
        if last is not None and np.abs(shot - last).mean() < 0.5 or time.monotonic() > deadline:
            return shot
        last = shot


def test_viewer_loads_and_draws_the_fleet(start_node, ports):
    view = start_node("view", parameters={"robots": ["robot1"], "foxglove": False, "use_sim_time": True,
                                          "rerun_web_port": ports["rerun_web_port"], "rerun_grpc_port": ports["rerun_grpc_port"]})
    log = view.wait_for_log("live view (Rerun) in a browser: ", timeout=30)
    url = log.split("live view (Rerun) in a browser: ", 1)[1].split()[0]
    with Browser(width=1280, height=800) as browser:
        browser.open(url)
        empty = _wait_drawn(browser, timeout=90)
        assert browser.evaluate("document.querySelectorAll('canvas').length") >= 1, "the viewer's canvas did not load"
        start_node("simulator", parameters=SIM)
        start_node("dao_listener", parameters={"policy_file": "package://depai/config/policy.yaml"})
        view.wait_for_log("", timeout=1)
        time.sleep(8.0)
        drawn = _wait_drawn(browser, timeout=60)
        if SHOTS:
            from PIL import Image

            Image.fromarray(empty.astype(np.uint8)).save(f"{SHOTS}/empty.png")
            Image.fromarray(drawn.astype(np.uint8)).save(f"{SHOTS}/drawn.png")
    h, w, _ = drawn.shape
    # The 3D view is the left 60 % below the top bar; the 2D map the top of the right part.
    regions = {"3D view": (slice(int(0.1 * h), int(0.9 * h)), slice(int(0.05 * w), int(0.55 * w))),
               "2D map": (slice(int(0.1 * h), int(0.45 * h)), slice(int(0.65 * w), int(0.95 * w)))}
    for name, (rows, cols) in regions.items():
        changed = (np.abs(drawn[rows, cols] - empty[rows, cols]).sum(axis=2) > 60).mean()
        assert changed > 0.02, f"{name}: only {changed:.1%} of its pixels changed between the empty viewer and the running fleet"


def test_the_data_servers_bind_loopback_only(start_node, ports):
    """The fleet's data (Rerun's gRPC, the Foxglove endpoint) is not served to the network by default."""
    import subprocess

    view = start_node("view", parameters={"robots": ["robot1"], "world": "", "foxglove_port": ports["foxglove_port"],
                                          "rerun_web_port": ports["rerun_web_port"], "rerun_grpc_port": ports["rerun_grpc_port"]})
    view.wait_for_log("Foxglove endpoint", timeout=30)
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout.split()
    for name in ("rerun_grpc_port", "foxglove_port"):
        port = ports[name]
        local = [a for a in listening if a.endswith(f":{port}")]
        assert local and all(a.startswith("127.0.0.1:") for a in local), f"{name} {port}: {local}"
