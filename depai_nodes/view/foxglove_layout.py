"""The Foxglove app's layout for the view's endpoint, built with foxglove-sdk's layout types.

    python -m depai_nodes.view.foxglove_layout [config/foxglove_layout.json]

writes the layout file the repository ships (config/foxglove_layout.json; in the Foxglove app:
Layouts > Import from file, then Open connection > Foxglove WebSocket > ws://127.0.0.1:8765).
Left: a 3D panel in `map` (the scene entities, the clouds, the occupancy grid, TF); right: the
top-down map (the same 3D renderer seen from above), the speed plot (/plots) and the raw /scene.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = REPO_ROOT / "config" / "foxglove_layout.json"


def layout(robots: tuple[str, ...] = ("robot1", "robot2")):
    import foxglove.layouts as fl

    topics = {"/scene": fl.BaseRendererSceneUpdateTopicSettings(visible=True, show_outlines=True),
              "/map": fl.BaseRendererGridTopicSettings(visible=True)}
    for robot in robots:
        topics[f"/{robot}/cloud"] = fl.BaseRendererPointCloudTopicSettings(visible=True)
    three_d = fl.ThreeDeePanel(title="fleet (3D, map frame)", config=fl.ThreeDeeConfig(
        follow_tf="map", fixed_frame="map", topics=topics,
        camera_state=fl.ThreeDeeCameraState(distance=38.0, perspective=True, phi=50.0, target=(0.0, 0.0, 0.0), theta_offset=0.0)))
    top_down = fl.ThreeDeePanel(title="map (top-down)", config=fl.ThreeDeeConfig(
        follow_tf="map", fixed_frame="map", topics=topics,
        camera_state=fl.ThreeDeeCameraState(distance=34.0, perspective=False, phi=0.0, target=(0.0, 0.0, 0.0), theta_offset=0.0)))
    speed = fl.PlotPanel(title="speed (m/s)", config=fl.PlotConfig(
        paths=[fl.PlotSeries(value=f'/plots{{robot=="{r}"}}{{what=="speed"}}.value', label=r, timestamp_method="receiveTime") for r in robots],
        show_legend=True))
    return fl.Layout(content=fl.SplitContainer(direction="row", items=[
        fl.SplitItem(proportion=3, content=three_d),
        fl.SplitItem(proportion=2, content=fl.SplitContainer(direction="column", items=[
            fl.SplitItem(proportion=3, content=top_down),
            fl.SplitItem(proportion=2, content=speed),
            fl.SplitItem(proportion=1, content=fl.RawMessagesPanel(title="/scene", config=fl.RawMessagesConfig(topic_path="/scene"))),
        ])),
    ]))


def write(path: Path = DEFAULT_PATH) -> Path:
    text = json.dumps(json.loads(layout().to_json()), indent=2) + "\n"
    path.write_text(text)
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH))
