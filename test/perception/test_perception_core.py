"""Perception core on real Ouster sweeps and on synthetic scenes with known answers."""

from pathlib import Path

import numpy as np
import pytest

from depai_nodes.common.params import ParamsModel
from depai_nodes.perception.core import (
    Perception, PerceptionError, PerceptionParams, segment_ground, voxel_downsample)

SCANS = ["ouster_os0_128_scan0.npy", "ouster_os2_128_scan0.npy", "ouster_os0_32_scan0.npy"]


def load(data: Path, name: str):
    a = np.load(data / "lidar" / name)
    return np.stack([a["x"], a["y"], a["z"]], axis=1)


@pytest.mark.parametrize("name", SCANS)
def test_real_sweep_ground_removed_and_obstacles_found(shared_data, name):
    xyz = load(shared_data, name)
    r = Perception().process(xyz)
    v = r.voxels
    assert r.ground_mask.sum() > 0.1 * len(v), "a street/lab sweep is largely ground"
    assert r.obstacle_mask.sum() > 0.05 * len(v)
    assert not (r.ground_mask & r.obstacle_mask).any()
    # Near the sensor, the lowest layer of the sweep (around the 10th height percentile, found
    # independently of the algorithm) is mostly ground -- curbs and ramps make it less than all
    # of it on the street sweeps -- and what stands 1-2 m above it (walls, cars, people) is
    # obstacle almost without exception.
    near = np.hypot(v[:, 0], v[:, 1]) < 8
    z0 = np.percentile(v[near, 2], 10)
    layer = near & (np.abs(v[:, 2] - z0) < 0.15)
    assert r.ground_mask[layer].mean() > 0.5
    tall = near & (v[:, 2] > z0 + 1.0) & (v[:, 2] < z0 + 2.0)
    assert tall.sum() > 100 and r.obstacle_mask[tall].mean() > 0.95
    # Obstacles found: several clusters, some as tall as a person/car/wall.
    assert max(o.box_max[2] - o.box_min[2] for o in r.obstacles) > 1.0
    assert len(r.obstacles) >= 3
    for o in r.obstacles:
        assert np.all(o.box_min <= o.centroid) and np.all(o.centroid <= o.box_max)
        assert o.point_count >= PerceptionParams().min_cluster_points
    assert sum(o.point_count for o in r.obstacles) <= r.valid_points
    assert r.costmap.dtype == np.int8 and set(np.unique(r.costmap)) <= {-1, 0, 100}
    assert (r.costmap == 100).any() and (r.costmap == 0).any()


def test_real_sweep_with_garbage_points_gives_same_result(shared_data):
    xyz = load(shared_data, "ouster_os0_32_scan0.npy")
    clean = Perception().process(xyz)
    junk = np.array([[np.nan, 0, 0], [np.inf, 1, 1], [0, -np.inf, 0], [1, 1, np.nan], [1e30, 1e30, 1e30]],
                    np.float32)
    dirty = Perception().process(np.concatenate([junk, xyz, junk]))
    assert dirty.valid_points == clean.valid_points
    assert len(dirty.obstacles) == len(clean.obstacles)


def test_organized_strided_input_equals_contiguous(shared_data):
    xyz = load(shared_data, "ouster_os0_32_scan0.npy")
    n = len(xyz) // 64 * 64
    structured = np.zeros(n, [("x", "f4"), ("y", "f4"), ("z", "f4"), ("pad", "f4"), ("i", "f4")])
    for k, c in enumerate("xyz"):
        structured[c] = xyz[:n, k]
    view = np.lib.stride_tricks.as_strided(structured["x"], shape=(n, 3), strides=(20, 4))
    a = Perception().process(view)
    b = Perception().process(np.ascontiguousarray(xyz[:n]))
    assert len(a.obstacles) == len(b.obstacles)
    assert np.array_equal(a.costmap, b.costmap)


def box_points(lo, hi, step=0.05):
    """Surface samples of an axis-aligned box's side faces (what a LiDAR sees)."""
    xs = np.arange(lo[0], hi[0] + 1e-9, step)
    ys = np.arange(lo[1], hi[1] + 1e-9, step)
    zs = np.arange(lo[2], hi[2] + 1e-9, step)
    pts = []
    for x in (lo[0], hi[0]):
        Y, Z = np.meshgrid(ys, zs)
        pts.append(np.stack([np.full(Y.size, x), Y.ravel(), Z.ravel()], 1))
    for y in (lo[1], hi[1]):
        X, Z = np.meshgrid(xs, zs)
        pts.append(np.stack([X.ravel(), np.full(X.size, y), Z.ravel()], 1))
    return np.concatenate(pts)


def test_synthetic_ramp_is_ground_and_boxes_are_obstacles():
    rng = np.random.default_rng(3)
    g = rng.uniform(-15, 15, size=(60000, 2))
    # 10 degree ramp for x > 0 (a yard slope), flat for x <= 0; sensor 0.5 m above flat ground.
    gz = -0.5 + np.where(g[:, 0] > 0, g[:, 0] * np.tan(np.radians(10)), 0.0)
    ground = np.column_stack([g, gz + rng.normal(0, 0.01, len(g))])
    boxes = [((-3, 3, -0.5), (-2, 4, 0.5)), ((-6, -2, -0.5), (-5.5, 2, 1.0)), ((6, -4, 0.56), (6.6, -3.4, 1.3))]
    pts = [ground] + [box_points(lo, hi) for lo, hi in boxes]
    xyz = np.concatenate(pts).astype(np.float32)
    r = Perception().process(xyz)
    ramp = r.voxels[:, 0] > 0.5
    on_ground = np.abs(r.voxels[:, 2] - (-0.5 + np.maximum(r.voxels[:, 0], 0) * np.tan(np.radians(10)))) < 0.08
    # The ramp is not mistaken for an obstacle (a single-plane RANSAC would cut it).
    assert r.obstacle_mask[ramp & on_ground].mean() < 0.05
    assert len(r.obstacles) == len(boxes)
    for lo, hi in boxes:  # every box has exactly one cluster whose footprint matches it
        lo, hi = np.array(lo), np.array(hi)
        match = [o for o in r.obstacles if np.all(np.abs(o.box_min[:2] - lo[:2]) < 0.2)
                 and np.all(np.abs(o.box_max[:2] - hi[:2]) < 0.2)]
        assert len(match) == 1, (lo, hi)


def test_box_top_seen_without_its_base_is_obstacle():
    # Only the top face of a 0.8 m crate is visible (e.g. from a high mount): its cells hold no
    # ground, so their minimum floats above the neighbourhood and must not become "ground".
    rng = np.random.default_rng(4)
    g = rng.uniform(-8, 8, size=(20000, 2))
    ground = np.column_stack([g, np.full(len(g), -1.0)])
    inside = (np.abs(ground[:, 0] - 4) < 0.6) & (np.abs(ground[:, 1]) < 0.6)
    ground = ground[~inside]
    X, Y = np.meshgrid(np.arange(3.5, 4.5, 0.05), np.arange(-0.5, 0.5, 0.05))
    top = np.column_stack([X.ravel(), Y.ravel(), np.full(X.size, -0.2)])
    r = Perception().process(np.concatenate([ground, top]).astype(np.float32))
    topmask = r.voxels[:, 2] > -0.5
    assert r.obstacle_mask[topmask].all()
    assert len(r.obstacles) == 1


def test_empty_and_all_invalid_clouds():
    p = Perception()
    for xyz in (np.empty((0, 3), np.float32), np.full((100, 3), np.nan, np.float32)):
        r = p.process(xyz)
        assert r.obstacles == [] and r.valid_points == 0
        assert (r.costmap == -1).all()


def test_bad_input_raises_typed_error():
    p = Perception()
    with pytest.raises(PerceptionError):
        p.process(np.zeros((10, 4), np.float32))
    with pytest.raises(PerceptionError):
        p.process(np.zeros((10, 3), np.int32))


def test_voxel_downsample_counts_and_centroids():
    pts = np.array([[0.01, 0.01, 0.01], [0.09, 0.02, 0.05], [0.15, 0, 0], [-0.05, 0, 0]], np.float32)
    c, n = voxel_downsample(pts, 0.1)
    assert len(c) == 3 and n.sum() == 4
    assert np.allclose(sorted(c[:, 0]), [-0.05, 0.05, 0.15])
    k = np.argmin(np.abs(c[:, 0] - 0.05))
    assert n[k] == 2 and np.allclose(c[k], [0.05, 0.015, 0.03])


def test_ground_tolerance_changes_classification():
    pts = np.array([[x, y, -0.5] for x in np.arange(-3, 3, 0.1) for y in np.arange(-3, 3, 0.1)]
                   + [[1.0, 1.0, -0.3]], np.float32)
    g, o = segment_ground(pts, PerceptionParams(ground_tolerance=0.1))
    assert o[-1]
    g, o = segment_ground(pts, PerceptionParams(ground_tolerance=0.3))
    assert g[-1] and not o[-1]


def test_params_validation():
    assert issubclass(PerceptionParams, ParamsModel)
    with pytest.raises(ValueError, match="crop_z_max"):
        PerceptionParams(crop_z_min=1.0, crop_z_max=0.0)
    with pytest.raises(ValueError):
        PerceptionParams(voxel_size=-1)
    with pytest.raises(ValueError, match="odd"):
        PerceptionParams(ground_window=4)
    with pytest.raises(ValueError):
        PerceptionParams(bogus=1)
