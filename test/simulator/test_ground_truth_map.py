"""The simulator's ground-truth occupancy map: obstacles where the world has them, terrain drivable."""

import numpy as np
import pytest

from depai_nodes.simulator.core import SimParams, Simulator


def cell(grid, ox, oy, res, x, y):
    return grid[int((y - oy) / res), int((x - ox) / res)]


@pytest.fixture(scope="module")
def warehouse():
    sim = Simulator(SimParams(world="warehouse"))
    return sim.occupancy_map(0.1)


def test_walls_and_columns_are_occupied_and_aisles_free(warehouse):
    grid, ox, oy = warehouse
    assert grid.dtype == np.int8 and set(np.unique(grid)) <= {0, 100}
    assert cell(grid, ox, oy, 0.1, 0.0, 10.0) == 100      # north wall (30 x 0.2 m at y = 10)
    assert cell(grid, ox, oy, 0.1, 0.0, -3.5) == 100      # column_0
    assert cell(grid, ox, oy, 0.1, 0.0, 0.0) == 0         # spawn point, open floor
    # The walls close the map: the whole border ring inside the 1 m margin is free outside them.
    assert (grid[0] == 0).all() and (grid[-1] == 0).all()


def test_drivable_terrain_is_free_but_things_on_it_are_not():
    sim = Simulator(SimParams(world="yard"))
    grid, ox, oy = sim.occupancy_map(0.1)
    ramps = [(m.pose[0, 3], m.pose[1, 3]) for m in sim.world.shapes if m.terrain and m.kind == "box"]
    assert ramps, "the yard has ramp terrain"
    for x, y in ramps:
        assert cell(grid, ox, oy, 0.1, x, y) == 0
    assert (grid == 100).sum() > 100


def test_the_map_matches_what_the_robot_bumps_into(warehouse):
    """Ground truth for the planner must agree with the simulator's own collision model."""
    grid, ox, oy = warehouse
    sim = Simulator(SimParams(world="warehouse", robot_radius=0.06))
    robot = sim.robots["robot1"]
    rng = np.random.default_rng(1)
    disagreements = 0
    samples = 400
    for x, y in rng.uniform([-14, -9], [14, 9], size=(samples, 2)):
        occupied = cell(grid, ox, oy, 0.1, x, y) == 100
        disagreements += occupied != sim._collides(robot, x, y, 0.0)
    # Cells straddling an obstacle edge can go either way; the rest must agree.
    assert disagreements <= samples * 0.03


def test_robots_without_spawn_poses_are_placed_apart_and_free():
    sim = Simulator(SimParams(world="warehouse", robots=["a", "b", "c"], spawn_poses=[]))
    spots = [(r.x, r.y) for r in sim.robots.values()]
    assert spots[0] == (0.0, 0.0)
    for robot in sim.robots.values():
        assert not sim._collides(robot, robot.x, robot.y, robot.z)
    for i, (x, y) in enumerate(spots):
        for u, v in spots[i + 1:]:
            assert np.hypot(x - u, y - v) >= 2 * sim.params.robot_radius + 0.5 - 1e-9
