"""Embedded simulator core, ROS-free: SDF world, differential-drive robots, 3D LiDAR.

* World geometry comes from an SDF file (:mod:`.sdf`) and is turned into triangle meshes in one
  Open3D ``RaycastingScene`` (Embree BVH, multi-threaded C++): a 131,072-ray sweep takes a few
  milliseconds, and every hit reports which geometry it struck, which gives perception tests
  exact ground truth.
* Robots are discs (``robot_radius``) moving with differential-drive kinematics: commanded
  linear/angular velocity clamped to speed limits, approached with acceleration limits, and
  dropped to zero when commands stop arriving (``cmd_timeout``). A step that would bring the disc
  closer than its radius to an obstacle (or another robot) is not taken: the robot stops, as a
  bumper would make it. The robot follows the terrain height under it (ramps), staying level.
* The LiDAR is a spinning multi-beam sensor: ``beams`` rows evenly spread over the vertical field
  of view, ``horizontal`` columns over 360 degrees, ranges with Gaussian noise, no-returns as NaN
  (organized cloud, ``is_dense = false``), intensity from the incidence angle, ``ring`` = row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import open3d as o3d
from pydantic import Field, model_validator

from depai_nodes.common.params import ParamsModel

from .sdf import Shape, World, load_world

__all__ = [
    "SimulatorError", "SimParams", "LidarConfig", "RobotState", "Sweep", "Simulator",
    "resolve_world", "shape_mesh", "CLOUD_DTYPE", "robot_frames",
]

WORLDS_DIR = Path(__file__).resolve().parents[2] / "worlds"

# Point layout of simulated clouds: same field names and types as gz-sensors' gpu_lidar.
CLOUD_DTYPE = np.dtype({"names": ["x", "y", "z", "intensity", "ring"],
                        "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
                        "offsets": [0, 4, 8, 12, 16], "itemsize": 20})


def robot_frames(robot: str, prefixed: bool = True) -> tuple[str, str, str]:
    """(odom, base_link, lidar_link) frame ids of `robot` (REP-105; prefixed for multi-robot)."""
    prefix = f"{robot}/" if prefixed and robot else ""
    return f"{prefix}odom", f"{prefix}base_link", f"{prefix}lidar_link"


class SimulatorError(ValueError):
    """Invalid simulator configuration (bad world, spawn inside an obstacle, ...)."""


class SimParams(ParamsModel):
    world: str = Field("warehouse", description="SDF world: a name in worlds/ (warehouse, yard, depot) or a file path", json_schema_extra={"read_only": True})
    robots: list[str] = Field(["robot1"], description="Robot namespaces (relative; '' = the node's own namespace)", json_schema_extra={"read_only": True})
    spawn_poses: list[float] = Field([0.0, 0.0, 0.0], description="x y yaw (m, m, rad) per robot, flattened; empty: placed automatically near the origin", json_schema_extra={"read_only": True})
    physics_rate: float = Field(50.0, ge=10.0, le=1000.0, description="Simulation steps per simulated second, Hz", json_schema_extra={"read_only": True})
    real_time_factor: float = Field(1.0, gt=0.0, le=20.0, description="Simulated seconds per wall second (target)")
    odom_rate: float = Field(50.0, gt=0.0, le=1000.0, description="Odometry publishing rate, Hz (sim time)")
    lidar_rate: float = Field(10.0, gt=0.0, le=50.0, description="LiDAR sweeps per simulated second, Hz")
    lidar_beams: int = Field(128, ge=1, le=256, description="Vertical beams (rows)")
    lidar_horizontal: int = Field(1024, ge=8, le=4096, description="Horizontal samples per revolution (columns)")
    lidar_vfov_min_deg: float = Field(-22.5, ge=-90.0, le=90.0, description="Lowest beam elevation, deg")
    lidar_vfov_max_deg: float = Field(22.5, ge=-90.0, le=90.0, description="Highest beam elevation, deg")
    lidar_min_range: float = Field(0.3, ge=0.0, le=10.0, description="Returns closer than this are dropped, m")
    lidar_max_range: float = Field(50.0, gt=0.5, le=500.0, description="Returns farther than this are dropped, m")
    lidar_noise_stddev: float = Field(0.01, ge=0.0, le=1.0, description="Gaussian range noise, m")
    lidar_mount_height: float = Field(0.5, ge=0.0, le=5.0, description="LiDAR origin above base_link, m")
    robot_radius: float = Field(0.3, gt=0.05, le=3.0, description="Robot footprint radius (collision disc), m")
    robot_height: float = Field(0.6, gt=0.05, le=5.0, description="Robot body height (collision, seen by other robots), m")
    step_height: float = Field(0.08, ge=0.0, le=0.5, description="Obstacles lower than this are driven over, m")
    max_linear_speed: float = Field(1.0, gt=0.0, le=20.0, description="|v| limit, m/s")
    max_angular_speed: float = Field(2.0, gt=0.0, le=20.0, description="|w| limit, rad/s")
    max_linear_accel: float = Field(1.5, gt=0.0, le=100.0, description="Linear acceleration limit, m/s^2")
    max_angular_accel: float = Field(4.0, gt=0.0, le=100.0, description="Angular acceleration limit, rad/s^2")
    cmd_timeout: float = Field(0.5, gt=0.0, le=10.0, description="Stop when no cmd_vel arrived for this long, s (sim time)")
    seed: int = Field(0, ge=0, description="Random seed of the LiDAR noise", json_schema_extra={"read_only": True})
    publish_map: bool = Field(True, description="Publish a ground-truth occupancy map of the world on <r>/map (latched)", json_schema_extra={"read_only": True})
    map_resolution: float = Field(0.1, ge=0.02, le=1.0, description="Cell size of the ground-truth map, m", json_schema_extra={"read_only": True})
    frame_prefix: bool = Field(True, description="Frames per robot prefixed with its name (robot1/odom, robot1/base_link, robot1/lidar_link; REP-105 multi-robot); false: odom, base_link, lidar_link (one robot only)", json_schema_extra={"read_only": True})

    @model_validator(mode="after")
    def _consistent(self):
        if self.lidar_vfov_max_deg < self.lidar_vfov_min_deg:
            raise ValueError("lidar_vfov_max_deg must be >= lidar_vfov_min_deg")
        if not self.frame_prefix and len(self.robots) > 1:
            raise ValueError("frame_prefix is needed with more than one robot: their frames would collide on /tf")
        if self.lidar_max_range <= self.lidar_min_range:
            raise ValueError("lidar_max_range must be greater than lidar_min_range")
        if not self.robots:
            raise ValueError("robots must list at least one robot")
        if len(set(self.robots)) != len(self.robots):
            raise ValueError("robots must be unique")
        if self.spawn_poses and len(self.spawn_poses) != 3 * len(self.robots):
            raise ValueError(f"spawn_poses needs 3 numbers (x y yaw) per robot: "
                             f"{3 * len(self.robots)} for {len(self.robots)} robot(s), got {len(self.spawn_poses)}")
        if self.physics_rate < self.lidar_rate or self.physics_rate < self.odom_rate:
            raise ValueError("physics_rate must be at least lidar_rate and odom_rate")
        return self


@dataclass(frozen=True)
class LidarConfig:
    beams: int = 128
    horizontal: int = 1024
    vfov_min_deg: float = -22.5
    vfov_max_deg: float = 22.5
    min_range: float = 0.3
    max_range: float = 50.0
    noise_stddev: float = 0.01
    mount_height: float = 0.5

    @classmethod
    def from_params(cls, p: SimParams) -> "LidarConfig":
        return cls(p.lidar_beams, p.lidar_horizontal, p.lidar_vfov_min_deg, p.lidar_vfov_max_deg,
                   p.lidar_min_range, p.lidar_max_range, p.lidar_noise_stddev, p.lidar_mount_height)

    def directions(self) -> np.ndarray:
        """(beams*horizontal, 3) unit ray directions in the sensor frame, row-major (row = beam)."""
        if self.beams == 1:
            el = np.array([math.radians((self.vfov_min_deg + self.vfov_max_deg) / 2)])
        else:
            el = np.radians(np.linspace(self.vfov_min_deg, self.vfov_max_deg, self.beams))
        az = np.arange(self.horizontal) * (2 * math.pi / self.horizontal)
        E, A = np.meshgrid(el, az, indexing="ij")
        d = np.stack([np.cos(E) * np.cos(A), np.cos(E) * np.sin(A), np.sin(E)], axis=-1)
        return d.reshape(-1, 3).astype(np.float32)


@dataclass
class RobotState:
    name: str
    x: float
    y: float
    yaw: float
    z: float = 0.0
    v: float = 0.0
    w: float = 0.0
    cmd_v: float = 0.0
    cmd_w: float = 0.0
    cmd_time: float = -math.inf
    bumped: bool = False


@dataclass
class Sweep:
    """One LiDAR revolution of one robot, organized (beams, horizontal)."""

    robot: str
    stamp: float
    xyz: np.ndarray        # (H, W, 3) float32, sensor frame, NaN where no return
    intensity: np.ndarray  # (H, W) float32
    object_index: np.ndarray  # (H, W) int32: index into Simulator.objects, -1 no return, -2 other robot
    normal_z: np.ndarray   # (H, W) float32: z of the world-frame surface normal at the hit (1 = flat)
    origin: np.ndarray     # (3,) sensor origin in the world
    yaw: float


def resolve_world(world: str) -> Path:
    """A world name in worlds/ (with or without .sdf) or a path to an SDF file."""
    p = Path(world)
    if p.suffix == ".sdf" and p.is_file():
        return p
    for cand in (WORLDS_DIR / world, WORLDS_DIR / f"{world}.sdf"):
        if cand.is_file():
            return cand
    known = sorted(q.stem for q in WORLDS_DIR.glob("*.sdf"))
    raise SimulatorError(f"world '{world}' not found (not a file, nor one of {known} in {WORLDS_DIR})")


def _plane_mesh(normal, size) -> o3d.geometry.TriangleMesh:
    sx, sy = size
    v = np.array([[-sx / 2, -sy / 2, 0], [sx / 2, -sy / 2, 0], [sx / 2, sy / 2, 0], [-sx / 2, sy / 2, 0]])
    m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v),
                                  o3d.utility.Vector3iVector(np.array([[0, 1, 2], [0, 2, 3]])))
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, n)
    s, c = np.linalg.norm(axis), float(np.dot(z, n))
    if s > 1e-9:
        k = axis / s
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        R = np.eye(3) + s * K + (1 - c) * K @ K
        m.rotate(R, center=(0, 0, 0))
    elif c < 0:
        m.rotate(np.diag([1.0, -1.0, -1.0]), center=(0, 0, 0))
    return m


def shape_mesh(shape: Shape) -> o3d.geometry.TriangleMesh:
    """Triangle mesh of one SDF collision shape, in world coordinates."""
    k, p = shape.kind, shape.params
    if k == "box":
        sx, sy, sz = p["size"]
        m = o3d.geometry.TriangleMesh.create_box(sx, sy, sz).translate((-sx / 2, -sy / 2, -sz / 2))
    elif k == "cylinder":
        m = o3d.geometry.TriangleMesh.create_cylinder(p["radius"], p["length"], resolution=32)
    elif k == "sphere":
        m = o3d.geometry.TriangleMesh.create_sphere(p["radius"], resolution=16)
    elif k == "capsule":
        r, L = p["radius"], p["length"]
        m = o3d.geometry.TriangleMesh.create_cylinder(r, L, resolution=32)
        m += o3d.geometry.TriangleMesh.create_sphere(r, resolution=16).translate((0, 0, L / 2))
        m += o3d.geometry.TriangleMesh.create_sphere(r, resolution=16).translate((0, 0, -L / 2))
    elif k == "plane":
        m = _plane_mesh(p["normal"], p["size"])
    else:  # pragma: no cover - sdf.py only produces the kinds above
        raise SimulatorError(f"unsupported shape kind {k}")
    return m.transform(shape.pose)


def _tmesh(m: o3d.geometry.TriangleMesh) -> o3d.t.geometry.TriangleMesh:
    return o3d.t.geometry.TriangleMesh.from_legacy(m)


@dataclass
class _Scene:
    scene: o3d.t.geometry.RaycastingScene
    object_of_geometry: np.ndarray  # geometry id -> object index (-2 = robot)


class Simulator:
    """Robots in an SDF world. ``step(dt)`` advances time; ``sweep(name)`` casts one LiDAR sweep."""

    def __init__(self, params: SimParams | None = None, world: World | None = None):
        self.params = p = params or SimParams()
        self.world = world if world is not None else load_world(resolve_world(p.world))
        self.lidar = LidarConfig.from_params(p)
        self._dirs = self.lidar.directions()
        self._rng = np.random.default_rng(p.seed)
        self.time = 0.0
        # Objects = top-level models; ground truth ids refer to these.
        self.objects: list[str] = self.world.models
        self.object_is_terrain = np.array(
            [any(s.terrain for s in self.world.shapes if s.model == o) for o in self.objects], bool)
        index = {o: i for i, o in enumerate(self.objects)}
        self._static = [(_tmesh(shape_mesh(s)), index[s.model], s.terrain) for s in self.world.shapes]
        self._full = self._build(self._static)
        self._terrain = self._build([t for t in self._static if t[2]])
        self._obstacles = self._build([t for t in self._static if not t[2]])
        self.robots: dict[str, RobotState] = {}
        for i, name in enumerate(p.robots):
            if p.spawn_poses:
                x, y, yaw = p.spawn_poses[3 * i: 3 * i + 3]
            else:
                x, y, yaw = self._free_spawn(name)
            r = RobotState(name, float(x), float(y), float(yaw))
            r.z = self._ground_height(r.x, r.y, 0.0)
            if self._collides(r, r.x, r.y, r.z):
                raise SimulatorError(f"robot '{name or '<node namespace>'}' spawns inside an obstacle at ({x}, {y})")
            self.robots[name] = r

    # -------------------------------------------------------------- scenes
    @staticmethod
    def _build(items) -> _Scene | None:
        if not items:
            return None
        scene = o3d.t.geometry.RaycastingScene()
        ids = []
        for mesh, obj, _terrain in items:
            gid = scene.add_triangles(mesh)
            ids.append((gid, obj))
        lut = np.full(max(g for g, _ in ids) + 1, -1, np.int32)
        for g, o in ids:
            lut[g] = o
        return _Scene(scene, lut)

    def _scene_with_robots(self, exclude: str) -> _Scene:
        others = [r for n, r in self.robots.items() if n != exclude]
        if not others:
            return self._full
        items = list(self._static)
        for r in others:
            body = o3d.geometry.TriangleMesh.create_cylinder(self.params.robot_radius, self.params.robot_height, 24)
            body.translate((r.x, r.y, r.z + self.params.robot_height / 2))
            items.append((_tmesh(body), -2, False))
        return self._build(items)

    def _free_spawn(self, name: str) -> tuple[float, float, float]:
        """The first free spot on a grid around the origin, clear of obstacles and placed robots."""
        p = self.params
        spacing = 2 * p.robot_radius + 0.5
        probe = RobotState(name, 0.0, 0.0, 0.0)
        for ring in range(0, 40):
            cells = [(i, j) for i in range(-ring, ring + 1) for j in range(-ring, ring + 1) if max(abs(i), abs(j)) == ring]
            for i, j in sorted(cells, key=lambda c: (abs(c[1]), abs(c[0]), c)):
                x, y = i * spacing, j * spacing
                if any(math.hypot(x - r.x, y - r.y) < spacing for r in self.robots.values()):
                    continue
                if not self._collides(probe, x, y, self._ground_height(x, y, 0.0)):
                    return x, y, 0.0
        raise SimulatorError(f"no free spawn spot for robot '{name}' within {40 * spacing:.0f} m of the origin")

    # -------------------------------------------------------------- ground-truth map
    def occupancy_map(self, resolution: float, margin: float = 1.0) -> tuple[np.ndarray, float, float]:
        """A 2D occupancy grid of the world as the robot's body sees it: what a perfect SLAM run
        would produce. Returns (grid, origin_x, origin_y): int8 cells, row 0 at origin_y, values
        100 (an obstacle surface within the cell, between step_height and robot_height above the
        local terrain) or 0. Terrain (ramps, hills) is drivable and stays free.

        Cells are tested in one vectorised signed-distance query, so a 40 x 30 m world at 0.1 m
        takes well under a second.
        """
        p = self.params
        obstacles = [m for m, _obj, terrain in self._static if not terrain]
        if not obstacles or self._obstacles is None:
            raise SimulatorError("the world has no obstacles to map")
        lo = np.full(2, np.inf)
        hi = np.full(2, -np.inf)
        for mesh in obstacles:
            v = mesh.vertex.positions.numpy()[:, :2]
            lo, hi = np.minimum(lo, v.min(axis=0)), np.maximum(hi, v.max(axis=0))
        lo, hi = lo - margin, hi + margin
        width, height = (np.ceil((hi - lo) / resolution)).astype(int)
        if width * height > 25_000_000:
            raise SimulatorError(f"map of {width} x {height} cells is too large; raise map_resolution")
        xs = lo[0] + (np.arange(width) + 0.5) * resolution
        ys = lo[1] + (np.arange(height) + 0.5) * resolution
        gx, gy = np.meshgrid(xs, ys)  # row index = y
        cells = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
        ground = np.zeros(len(cells), np.float32)
        if self._terrain is not None:
            rays = np.zeros((len(cells), 6), np.float32)
            rays[:, :2] = cells
            rays[:, 2] = 100.0
            rays[:, 5] = -1.0
            t = self._terrain.scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
            ground = np.where(np.isfinite(t), 100.0 - t, 0.0).astype(np.float32)
        heights = np.linspace(p.step_height + 0.01, max(p.robot_height, p.step_height + 0.02), 4, dtype=np.float32)
        query = np.repeat(cells, len(heights), axis=0)
        z = (np.repeat(ground, len(heights)) + np.tile(heights, len(cells)))[:, None]
        query = np.hstack([query, z]).astype(np.float32)
        distance = self._obstacles.scene.compute_signed_distance(o3d.core.Tensor(query)).numpy()
        half_diagonal = resolution * math.sqrt(0.5)
        occupied = (distance.reshape(len(cells), len(heights)) < half_diagonal).any(axis=1)
        grid = np.where(occupied, 100, 0).astype(np.int8).reshape(height, width)
        return grid, float(lo[0]), float(lo[1])

    # -------------------------------------------------------------- robot motion
    def _ground_height(self, x: float, y: float, z_now: float) -> float:
        if self._terrain is None:
            return z_now
        ray = o3d.core.Tensor(np.array([[x, y, z_now + 2.0, 0, 0, -1]], np.float32))
        t = float(self._terrain.scene.cast_rays(ray)["t_hit"].numpy()[0])
        return z_now + 2.0 - t if math.isfinite(t) else z_now

    def _collides(self, r: RobotState, x: float, y: float, z: float) -> bool:
        p = self.params
        for other in self.robots.values():
            if other is not r and math.hypot(other.x - x, other.y - y) < 2 * p.robot_radius:
                return True
        if self._obstacles is None:
            return False
        hs = np.linspace(z + p.step_height + p.robot_radius, z + max(p.robot_height, p.step_height + p.robot_radius), 3)
        q = np.array([[x, y, h] for h in hs], np.float32)
        # Distance from the disc's axis: a sphere test at three heights plus the bottom rim.
        d = self._obstacles.scene.compute_distance(o3d.core.Tensor(q)).numpy()
        return bool(np.any(d < p.robot_radius))

    def set_cmd(self, name: str, v: float, w: float) -> None:
        r = self.robots[name]
        if not (math.isfinite(v) and math.isfinite(w)):
            return  # a NaN command is ignored, never integrated
        r.cmd_v, r.cmd_w, r.cmd_time = float(v), float(w), self.time

    def step(self, dt: float) -> None:
        p = self.params
        for r in self.robots.values():
            fresh = self.time - r.cmd_time <= p.cmd_timeout
            tv = float(np.clip(r.cmd_v, -p.max_linear_speed, p.max_linear_speed)) if fresh else 0.0
            tw = float(np.clip(r.cmd_w, -p.max_angular_speed, p.max_angular_speed)) if fresh else 0.0
            r.v += float(np.clip(tv - r.v, -p.max_linear_accel * dt, p.max_linear_accel * dt))
            r.w += float(np.clip(tw - r.w, -p.max_angular_accel * dt, p.max_angular_accel * dt))
            yaw_mid = r.yaw + 0.5 * r.w * dt
            nx, ny = r.x + r.v * math.cos(yaw_mid) * dt, r.y + r.v * math.sin(yaw_mid) * dt
            r.yaw = math.atan2(math.sin(r.yaw + r.w * dt), math.cos(r.yaw + r.w * dt))
            if r.v != 0.0:
                nz = self._ground_height(nx, ny, r.z)
                if self._collides(r, nx, ny, nz):
                    r.v, r.bumped = 0.0, True
                else:
                    r.x, r.y, r.z, r.bumped = nx, ny, nz, False
        self.time += dt

    # -------------------------------------------------------------- lidar
    def sweep(self, name: str) -> Sweep:
        r = self.robots[name]
        L = self.lidar
        c, s = math.cos(r.yaw), math.sin(r.yaw)
        d = self._dirs
        origin = np.array([r.x, r.y, r.z + L.mount_height], np.float32)
        rays = np.empty((d.shape[0], 6), np.float32)
        rays[:, :3] = origin
        rays[:, 3] = c * d[:, 0] - s * d[:, 1]
        rays[:, 4] = s * d[:, 0] + c * d[:, 1]
        rays[:, 5] = d[:, 2]
        sc = self._scene_with_robots(name)
        hit = sc.scene.cast_rays(o3d.core.Tensor.from_numpy(rays))
        t = hit["t_hit"].numpy()
        gid = hit["geometry_ids"].numpy()
        normals = hit["primitive_normals"].numpy()
        valid = np.isfinite(t) & (t >= L.min_range) & (t <= L.max_range)
        rng = t.copy()
        if L.noise_stddev > 0:
            rng += self._rng.normal(0.0, L.noise_stddev, size=rng.shape).astype(np.float32)
        rng[~valid] = np.nan
        xyz = d * rng[:, None]
        cosang = np.abs(np.einsum("ij,ij->i", normals, rays[:, 3:]))
        intensity = np.where(valid, 100.0 * cosang, 0.0).astype(np.float32)
        obj = np.full(t.shape, -1, np.int32)
        lut = sc.object_of_geometry
        g = gid[valid].astype(np.int64)
        obj[valid] = lut[np.clip(g, 0, len(lut) - 1)]
        H, W = L.beams, L.horizontal
        return Sweep(name, self.time, xyz.reshape(H, W, 3).astype(np.float32, copy=False),
                     intensity.reshape(H, W), obj.reshape(H, W),
                     np.abs(normals[:, 2]).reshape(H, W).astype(np.float32), origin, r.yaw)
