"""Perception against simulated sweeps with exact ground truth: precision and recall >= 0.95.

The matching rule is documented in groundtruth.py. Each world is scored over several robot
poses (aggregated), including one on the yard's hill where the ground rises ahead of the robot.
"""

import pytest

from depai_nodes.perception.core import Perception
from depai_nodes.simulator.core import SimParams, Simulator

from .groundtruth import Score, score

POSES = {
    "warehouse": [(0, 0, 0), (-7, 0, 0.5), (7, -2, 3.0), (0, 3, 1.5), (12.5, -7.5, 2.3)],
    "yard": [(0, 0, 0), (5, -1, 0.3), (-5, -6, 2.0), (10, 1, 0), (14, -3, 3.1)],
    "depot": [(0, 0, 0), (5, 2, 1.0), (-6, 0, -1.0), (9, -1, 2.5), (-12, 4, -0.7)],
}


@pytest.mark.parametrize("world", sorted(POSES))
def test_obstacle_precision_and_recall(world):
    perception = Perception()
    total = Score(0, 0, 0, 0)
    for x, y, yaw in POSES[world]:
        sim = Simulator(SimParams(world=world, spawn_poses=[x, y, yaw], seed=7))
        sweep = sim.sweep("robot1")
        result = perception.process(sweep.xyz.reshape(-1, 3))
        total = total + score(sim, sweep, [(o.box_min, o.box_max) for o in result.obstacles], perception.params)
    assert total.objects_in_view >= 10 * len(POSES[world]) // 2
    assert total.precision >= 0.95, total
    assert total.recall >= 0.95, total
