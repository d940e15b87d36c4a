"""Embedded simulator core: kinematics, limits, collisions, terrain, LiDAR geometry and noise."""

import math

import numpy as np
import pytest

from depai_nodes.simulator.core import SimParams, Simulator, SimulatorError, resolve_world
from depai_nodes.simulator.sdf import parse_world

WALL = """<?xml version="1.0"?><sdf version="1.9"><world name="t">
  <model name="ground_plane"><static>true</static><link name="l"><collision name="c"><geometry>
    <plane><normal>0 0 1</normal><size>100 100</size></plane></geometry></collision></link></model>
  <model name="wall"><static>true</static><pose>5 0 1 0 0 0</pose><link name="l"><collision name="c">
    <geometry><box><size>0.2 20 2</size></box></geometry></collision></link></model>
</world></sdf>"""


def sim_with(text=WALL, **kw):
    return Simulator(SimParams(**kw), world=parse_world(text))


def drive(sim, name, v, w, seconds, dt=0.02):
    for _ in range(int(round(seconds / dt))):
        sim.set_cmd(name, v, w)
        sim.step(dt)


def test_speed_and_acceleration_limits():
    sim = sim_with(max_linear_speed=0.5, max_linear_accel=1.0, lidar_noise_stddev=0)
    r = sim.robots["robot1"]
    drive(sim, "robot1", 5.0, 0.0, 0.2)
    assert r.v == pytest.approx(0.2, abs=1e-9)  # accel-limited: 1 m/s^2 * 0.2 s
    drive(sim, "robot1", 5.0, 0.0, 1.0)
    assert r.v == pytest.approx(0.5)  # speed-limited
    assert r.y == pytest.approx(0.0) and r.x > 0.3


def test_turning_in_place_and_arc():
    sim = sim_with(max_angular_speed=1.0, max_angular_accel=100.0)
    r = sim.robots["robot1"]
    drive(sim, "robot1", 0.0, 1.0, math.pi / 2)
    assert r.yaw == pytest.approx(math.pi / 2, abs=0.03) and math.hypot(r.x, r.y) < 1e-9
    drive(sim, "robot1", 0.5, 0.0, 1.0)
    assert r.y > 0.3 and abs(r.x) < 0.02  # now moving along +y


def test_command_timeout_stops_the_robot():
    sim = sim_with(cmd_timeout=0.3, max_linear_accel=100.0)
    r = sim.robots["robot1"]
    sim.set_cmd("robot1", 1.0, 0.0)
    for _ in range(50):
        sim.step(0.02)
    assert r.v == 0.0
    assert r.x == pytest.approx(0.3, abs=0.03)


def test_nan_command_is_ignored():
    sim = sim_with()
    sim.set_cmd("robot1", float("nan"), 0.0)
    drive(sim, "robot1", float("inf"), 0.0, 0.2)
    assert sim.robots["robot1"].x == 0.0


def test_collision_stops_before_the_wall():
    sim = sim_with(robot_radius=0.3, max_linear_accel=100.0)
    r = sim.robots["robot1"]
    drive(sim, "robot1", 1.0, 0.0, 8.0)
    assert r.bumped and r.v == 0.0
    # Wall face at x = 4.9; the disc stops within one step of touching it and never passes.
    assert 4.9 - 0.3 - 0.03 <= r.x < 4.9 - 0.3 + 1e-9


def test_spawn_inside_an_obstacle_is_rejected():
    with pytest.raises(SimulatorError, match="inside an obstacle"):
        sim_with(spawn_poses=[5.0, 0.0, 0.0])


def test_robot_follows_the_yard_ramp():
    sim = Simulator(SimParams(world="yard", spawn_poses=[5.0, -3.0, 0.0], max_linear_accel=100.0))
    r = sim.robots["robot1"]
    drive(sim, "robot1", 1.0, 0.0, 4.0)
    assert r.x == pytest.approx(9.0, abs=0.1)
    assert r.z == pytest.approx((r.x - 6.0) * math.tan(math.radians(8)), abs=0.02)


def test_lidar_geometry_and_ground_truth():
    sim = sim_with(lidar_beams=16, lidar_horizontal=360, lidar_noise_stddev=0.0, lidar_mount_height=0.5)
    s = sim.sweep("robot1")
    assert s.xyz.shape == (16, 360, 3) and s.object_index.shape == (16, 360)
    wall = sim.objects.index("wall")
    ground = sim.objects.index("ground_plane")
    hit_wall = s.object_index == wall
    assert hit_wall[:, 0].any()  # column 0 looks along +x, at the wall
    np.testing.assert_allclose(s.xyz[hit_wall][:, 0], 4.9, atol=1e-3)
    hit_ground = s.object_index == ground
    np.testing.assert_allclose(s.xyz[hit_ground][:, 2], -0.5, atol=1e-3)  # sensor frame: ground 0.5 below
    up = s.xyz[-1]  # the top beam (+22.5 deg) sees the sky behind the robot: no return -> NaN
    assert np.isnan(up[180]).all() and (s.object_index[-1, 180] == -1)
    assert np.isfinite(s.xyz[hit_wall | hit_ground]).all()


def test_lidar_noise_has_the_configured_spread():
    sim = sim_with(lidar_beams=8, lidar_horizontal=720, lidar_noise_stddev=0.05)
    exact = sim_with(lidar_beams=8, lidar_horizontal=720, lidar_noise_stddev=0.0)
    a, b = sim.sweep("robot1").xyz, exact.sweep("robot1").xyz
    ok = np.isfinite(a[..., 0]) & np.isfinite(b[..., 0])
    dr = np.linalg.norm(a[ok], axis=1) - np.linalg.norm(b[ok], axis=1)
    assert dr.std() == pytest.approx(0.05, rel=0.15) and abs(dr.mean()) < 0.01


def test_robots_see_each_other_and_do_not_collide():
    sim = sim_with(robots=["r1", "r2"], spawn_poses=[0.0, 0.0, 0.0, 2.0, 0.0, math.pi],
                   lidar_beams=16, lidar_horizontal=360, lidar_noise_stddev=0.0, max_linear_accel=100.0)
    s = sim.sweep("r1")
    assert (s.object_index[:, 0] == -2).any()  # r2 straight ahead
    drive(sim, "r1", 1.0, 0.0, 3.0)
    assert sim.robots["r1"].bumped and sim.robots["r1"].x <= 2.0 - 0.6 + 1e-9


def test_unknown_world_lists_the_known_ones():
    with pytest.raises(SimulatorError, match="warehouse"):
        resolve_world("atlantis")


@pytest.mark.parametrize("kw, match", [
    (dict(robots=["a", "b"], spawn_poses=[0.0, 0.0, 0.0]), "spawn_poses"),
    (dict(robots=["a", "a"], spawn_poses=[0.0] * 6), "unique"),
    (dict(lidar_vfov_min_deg=10.0, lidar_vfov_max_deg=-10.0), "vfov"),
    (dict(lidar_rate=60.0), "less than or equal"),
])
def test_invalid_params(kw, match):
    with pytest.raises(ValueError, match=match):
        SimParams(**kw)


def test_stamps_carry_into_seconds():
    # 1750 steps of 0.02 s accumulate to 34.9999999999996 s; its stamp must read 35.0, not 34.0.
    from depai_nodes.simulator.node import _stamp

    t = 0.0
    for _ in range(1750):
        t += 0.02
    s = _stamp(t)
    assert (s.sec, s.nanosec) == (35, 0)
    s = _stamp(1.25)
    assert (s.sec, s.nanosec) == (1, 250_000_000)
