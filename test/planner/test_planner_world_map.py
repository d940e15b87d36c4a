"""Occupancy maps rasterised from the SDF worlds the simulator runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depai_nodes.planner.errors import MapLoadError
from depai_nodes.planner.mapio import load_map, load_map_or_world
from depai_nodes.planner.world_map import rasterize_world, world_to_map
from depai_nodes.simulator.sdf import load_world

REPO_ROOT = Path(__file__).resolve().parents[2]



@pytest.mark.parametrize("name", ["warehouse", "depot", "yard"])
def test_world_shapes_are_occupied_and_spawn_area_free(name, tmp_path):
    sdf = REPO_ROOT / "worlds" / f"{name}.sdf"
    m = world_to_map(sdf)
    world = load_world(sdf)
    # Every upright box obstacle's centre (within the robot's height band) is occupied.
    boxes = [s for s in world.shapes if s.kind == "box" and not s.terrain and 0.08 < s.pose[2, 3] < 0.6
             and min(s.params["size"][:2]) > 0.15]
    assert boxes
    for s in boxes:
        c, r = m.world_to_cell(s.pose[0, 3], s.pose[1, 3])
        assert m.data[r, c] == 100, s.name
    assert 0.0 < (m.data == 100).mean() < 0.5
    # The YAML + PGM written for map_server loads back to the same grid.
    again = load_map(rasterize_world(sdf, tmp_path))
    assert np.array_equal(again.data, m.data)
    assert again.origin_x == pytest.approx(m.origin_x) and again.origin_y == pytest.approx(m.origin_y)
    assert load_map_or_world(sdf).data.shape == m.data.shape


def test_bad_world_is_a_map_load_error(tmp_path):
    (tmp_path / "w.sdf").write_text("<sdf version='1.9'><world name='x'></world></sdf>")
    with pytest.raises(MapLoadError):
        world_to_map(tmp_path / "w.sdf")
    (tmp_path / "bad.sdf").write_text("<sdf><world")
    with pytest.raises(MapLoadError):
        world_to_map(tmp_path / "bad.sdf")
