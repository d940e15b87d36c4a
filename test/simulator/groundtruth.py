"""Obstacle precision/recall of perception against the simulator's per-ray ground truth.

Matching rule (used by the tests and by bench/perception.py):

* An object is **in view** when at least ``min_hits`` LiDAR returns hit it inside perception's
  crop (horizontal range and z slab) at more than ``min_height`` above the terrain under the hit
  (terrain height found by a downward ray on the world's terrain). Terrain models (ground_*,
  terrain_*) are not objects, except where their surface is steeper than perception's
  ``max_ground_slope_deg`` (the side of a ramp is a wall to a wheeled robot): those returns
  belong to the terrain model as an object.
* An object is **found** when at least half of its qualifying returns lie in the clusters' 3D
  boxes grown by ``margin`` on every side (one cluster or several: a long wall cut by occlusion
  shadows comes out as segments). **Recall** = objects found / objects in view.
* A cluster is **correct** when at least half of all returns inside its grown box hit an object
  (anything but terrain), i.e. it is not a ground artefact or noise. **Precision** = correct
  clusters / clusters.

Merging two touching objects into one cluster costs nothing here (both are found; a planner
treats them alike); splitting one object into several correct clusters costs nothing either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d


@dataclass
class Score:
    objects_in_view: int
    objects_covered: int
    clusters: int
    clusters_correct: int

    @property
    def recall(self) -> float:
        return self.objects_covered / self.objects_in_view if self.objects_in_view else 1.0

    @property
    def precision(self) -> float:
        return self.clusters_correct / self.clusters if self.clusters else 1.0

    def __add__(self, o: "Score") -> "Score":
        return Score(self.objects_in_view + o.objects_in_view, self.objects_covered + o.objects_covered,
                     self.clusters + o.clusters, self.clusters_correct + o.clusters_correct)


def height_above_terrain(sim, world_pts: np.ndarray) -> np.ndarray:
    if sim._terrain is None:
        return world_pts[:, 2]
    rays = np.zeros((len(world_pts), 6), np.float32)
    rays[:, :2] = world_pts[:, :2]
    rays[:, 2] = world_pts[:, 2] + 5.0
    rays[:, 5] = -1.0
    t = sim._terrain.scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
    ground = np.where(np.isfinite(t), world_pts[:, 2] + 5.0 - t, 0.0)
    return world_pts[:, 2] - ground


def score(sim, sweep, boxes: list[tuple[np.ndarray, np.ndarray]], params, *, min_hits=20,
          min_height=0.25, margin=0.15) -> Score:
    """Score clusters (a list of (box_min, box_max) in the sensor frame) against a sweep."""
    xyz = sweep.xyz.reshape(-1, 3)
    obj = sweep.object_index.reshape(-1)
    ok = np.isfinite(xyz).all(axis=1)
    r = np.hypot(xyz[:, 0], xyz[:, 1])
    ok &= (r >= params.min_range) & (r <= params.max_range)
    ok &= (xyz[:, 2] >= params.crop_z_min) & (xyz[:, 2] <= params.crop_z_max)
    xyz, obj, nz = xyz[ok], obj[ok], sweep.normal_z.reshape(-1)[ok]
    c, s = np.cos(sweep.yaw), np.sin(sweep.yaw)
    world = np.column_stack([c * xyz[:, 0] - s * xyz[:, 1], s * xyz[:, 0] + c * xyz[:, 1], xyz[:, 2]]) + sweep.origin
    terrain = np.zeros(len(obj), bool)
    known = obj >= 0
    terrain[known] = sim.object_is_terrain[obj[known]]
    steep = nz < np.cos(np.radians(params.max_ground_slope_deg))
    terrain &= ~steep
    is_object = (obj == -2) | (known & ~terrain)
    h = height_above_terrain(sim, world)
    qual = is_object & (h > min_height) & (h < params.obstacle_max_height)
    in_box = [np.all((xyz >= lo - margin) & (xyz <= hi + margin), axis=1) for lo, hi in boxes]
    ids, counts = np.unique(obj[qual], return_counts=True)
    in_view = [k for k, n in zip(ids, counts) if n >= min_hits]
    any_box = np.zeros(len(obj), bool)
    for b in in_box:
        any_box |= b
    covered = 0
    for k in in_view:
        mine = qual & (obj == k)
        if (mine & any_box).sum() >= 0.5 * mine.sum():
            covered += 1
    correct = sum(1 for b in in_box if b.any() and is_object[b].mean() >= 0.5)
    return Score(len(in_view), covered, len(boxes), correct)
