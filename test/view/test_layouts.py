"""The viewer layouts shipped with the project: the Foxglove layout file is what its generator
writes today (so it names the topics the endpoint serves), and the Rerun blueprint saves."""

from __future__ import annotations

import json

from depai_nodes.view import foxglove_layout
from depai_nodes.view.blueprint import blueprint, save


def _topics(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "topics" and isinstance(value, dict):
                found |= set(value)
            elif key == "topicPath" and isinstance(value, str):
                found.add(value)
            elif key == "value" and isinstance(value, str) and value.startswith("/"):
                found.add(value.split("{")[0].split(".")[0])
            else:
                found |= _topics(value)
    elif isinstance(node, list):
        for item in node:
            found |= _topics(item)
    return found


def test_foxglove_layout_file_is_current_and_names_served_topics(tmp_path):
    shipped = json.loads(foxglove_layout.DEFAULT_PATH.read_text())
    fresh = json.loads(foxglove_layout.write(tmp_path / "layout.json").read_text())
    assert shipped == fresh, "config/foxglove_layout.json is stale: run python -m depai_nodes.view.foxglove_layout"
    served = {"/scene", "/map", "/tf", "/plots", "/robot1/cloud", "/robot2/cloud"}  # foxglove_sink.py's channels
    topics = _topics(shipped)
    assert {"/scene", "/map", "/plots", "/robot1/cloud"} <= topics
    assert topics <= served, f"the layout names topics the endpoint does not serve: {sorted(topics - served)}"


def test_rerun_blueprint_saves(tmp_path):
    path = tmp_path / "depai.rbl"
    save(str(path))
    assert path.stat().st_size > 200
    views = [type(v).__name__ for v in blueprint().root_container.contents[1].contents]
    assert views == ["Spatial2DView", "TimeSeriesView", "TimeSeriesView", "TimeSeriesView"]
