"""SDF loading: world poses agree with libsdformat (Gazebo's parser); bad files fail clearly."""

import math
from pathlib import Path

import numpy as np
import pytest

from depai_nodes.simulator.sdf import SdfError, load_world, parse_world, pose_matrix

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
WORLDS = ["warehouse", "yard", "depot"]


def reference(world):
    """{scoped collision name: 4x4} from the libsdformat dump (see data/libsdformat_dump_poses.cc)."""
    out = {}
    for line in (DATA / f"{world}.libsdformat.poses").read_text().splitlines():
        name, *v = line.split()
        out[name] = pose_matrix(*map(float, v))
    return out


@pytest.mark.parametrize("world", WORLDS)
def test_world_poses_match_libsdformat(world):
    w = load_world(ROOT / "worlds" / f"{world}.sdf")
    ref = reference(world)
    assert w.warnings == []
    assert sorted(s.name for s in w.shapes) == sorted(ref)
    for s in w.shapes:
        np.testing.assert_allclose(s.pose, ref[s.name], atol=1e-6, err_msg=s.name)
    assert any(s.terrain for s in w.shapes) and any(not s.terrain for s in w.shapes)


def test_worlds_are_self_contained_sdf_1_9_with_physics_and_lights():
    import xml.etree.ElementTree as ET

    for world in WORLDS:
        root = ET.parse(ROOT / "worlds" / f"{world}.sdf").getroot()
        assert float(root.get("version")) >= 1.9
        w = root.find("world")
        assert w.find("physics") is not None and w.find("light") is not None
        assert w.find("include") is None and "model://" not in ET.tostring(root, encoding="unicode")
        assert any(m.find(".//plane") is not None for m in w.findall("model"))


def sdf(body: str) -> str:
    return f'<?xml version="1.0"?><sdf version="1.9"><world name="t">{body}</world></sdf>'


def test_nested_poses_degrees_and_quaternions_compose():
    text = sdf("""
      <model name="outer"><pose degrees="true">1 0 0 0 0 90</pose>
        <model name="inner"><pose>2 0 0 0 0 0</pose>
          <link name="l"><pose rotation_format="quat_xyzw">0 1 0 0 0 0 1</pose>
            <collision name="c"><pose relative_to="l">0 0 0.5 0 0 0</pose>
              <geometry><box><size>1 2 3</size></box></geometry></collision></link></model></model>""")
    w = parse_world(text)
    (s,) = w.shapes
    assert s.name == "outer::inner::l::c" and s.model == "outer" and s.kind == "box"
    # outer at x=1 turned 90 deg: inner's +2 x becomes +2 y; link's +1 y becomes -1 x.
    np.testing.assert_allclose(s.pose[:3, 3], [0.0, 2.0, 0.5], atol=1e-9)
    np.testing.assert_allclose(s.pose[:3, 0], [0, 1, 0], atol=1e-9)


def test_visuals_lights_plugins_are_ignored_and_mesh_collision_warns():
    text = sdf("""
      <light type="point" name="l"/><plugin filename="x" name="y"/>
      <model name="m"><link name="l">
        <visual name="v"><geometry><mesh><uri>model://gone/mesh.dae</uri></mesh></geometry></visual>
        <collision name="c1"><geometry><sphere><radius>0.5</radius></sphere></geometry></collision>
        <collision name="c2"><geometry><mesh><uri>file:///nowhere.stl</uri></mesh></geometry></collision>
      </link></model>""")
    w = parse_world(text)
    assert [s.kind for s in w.shapes] == ["sphere"]
    assert len(w.warnings) == 1 and "m::l::c2" in w.warnings[0] and "mesh" in w.warnings[0]


@pytest.mark.parametrize("text, match", [
    ("<sdf version='1.9'><world name='t'><model name='m'>", "malformed XML"),
    ("<robot/>", "expected <sdf>"),
    ("<sdf version='1.9'/>", "no <world>"),
    (sdf("<include><uri>model://ground_plane</uri></include>"), "include"),
    (sdf("<model name='m'><pose>1 2 x 0 0 0</pose><link name='l'><collision name='c'><geometry>"
         "<sphere><radius>1</radius></sphere></geometry></collision></link></model>"), "expected numbers"),
    (sdf("<model name='m'><pose>1 2 3</pose><link name='l'><collision name='c'><geometry>"
         "<sphere><radius>1</radius></sphere></geometry></collision></link></model>"), "expected 6 numbers"),
    (sdf("<model name='m'><link name='l'><collision name='c'><pose relative_to='elsewhere'>0 0 0 0 0 0</pose>"
         "<geometry><sphere><radius>1</radius></sphere></geometry></collision></link></model>"), "relative_to"),
    (sdf("<model name='m'><link name='l'><collision name='c'><geometry><box><size>1 -1 1</size></box>"
         "</geometry></collision></link></model>"), "positive"),
    (sdf("<model name='m'><link name='l'><collision name='c'><geometry><torus/></geometry></collision>"
         "</link></model>"), "unknown geometry"),
    (sdf("<model name='m'><link name='l'><collision name='c'/></link></model>"), "without <geometry>"),
    (sdf("<light name='sun' type='directional'/>"), "no collision geometry"),
])
def test_bad_sdf_raises_sdf_error(text, match):
    with pytest.raises(SdfError, match=match):
        parse_world(text)


def test_missing_file_is_sdf_error(tmp_path):
    with pytest.raises(SdfError, match="cannot read"):
        load_world(tmp_path / "nope.sdf")


def test_pose_matrix_matches_rpy_convention():
    m = pose_matrix(0, 0, 0, 0.0, math.pi / 2, 0.0)  # pitch +90: x axis points down
    np.testing.assert_allclose(m[:3, 0], [0, 0, -1], atol=1e-12)
