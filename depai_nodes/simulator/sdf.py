"""SDF world loading for the embedded simulator: collision geometry with world poses.

Parsed with the standard library's XML parser (``xml.etree``). What is read:

* ``<world>`` → ``<model>`` (nested to any depth) → ``<link>`` → ``<collision>`` → ``<geometry>``,
  composing ``<pose>`` at every level (parent-relative, ``degrees="true"`` and
  ``rotation_format="quat_xyzw"`` honoured; ``relative_to`` naming the parent is accepted).
* Geometry: ``box``, ``cylinder``, ``sphere``, ``capsule``, ``plane``.

Decisions (why): collisions are what a LiDAR and a bumper interact with, so visuals, lights,
physics, plugins and materials are skipped silently — they do not change what the robot senses.
A collision geometry we cannot build (``mesh``, ``heightmap``, ``polyline``, ``ellipsoid``) is
skipped with a warning in :attr:`World.warnings`: the world still loads, and the warning says
which obstacle is missing. Malformed XML, a missing ``<world>``, bad numbers, ``relative_to``
naming another frame, and ``<include>`` (which needs ``model://`` downloads) raise
:class:`SdfError`, because silently simulating a different world than the file describes would
make every downstream result wrong.

Ground truth: models whose top-level name starts with ``ground`` or ``terrain`` are drivable
terrain; every other collision is an obstacle (see worlds/*.sdf headers).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SdfError", "Shape", "World", "load_world", "parse_world", "pose_matrix"]

_SKIPPED_GEOMETRY = {"mesh", "heightmap", "polyline", "ellipsoid", "image", "empty"}


class SdfError(ValueError):
    """The SDF file cannot be simulated faithfully; the message says where and why."""


@dataclass
class Shape:
    """One collision geometry placed in the world."""

    name: str                  # model::...::link::collision
    model: str                 # top-level model name (the ground-truth object)
    kind: str                  # box | cylinder | sphere | capsule | plane
    params: dict               # size / radius / length / normal
    pose: np.ndarray           # 4x4 world transform
    terrain: bool              # drivable (ground_* / terrain_* models)


@dataclass
class World:
    name: str
    shapes: list[Shape] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return sorted({s.model for s in self.shapes})


def pose_matrix(x=0.0, y=0.0, z=0.0, roll=0.0, pitch=0.0, yaw=0.0) -> np.ndarray:
    """4x4 transform from SDF's x y z roll pitch yaw (extrinsic X, Y, Z: R = Rz Ry Rx)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                 [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                 [-sp, cp * sr, cp * cr]]
    m[:3, 3] = (x, y, z)
    return m


def _quat_matrix(x, y, z, qx, qy, qz, qw) -> np.ndarray:
    n = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    if n == 0:
        raise SdfError("zero quaternion in <pose>")
    qx, qy, qz, qw = qx / n, qy / n, qz / n, qw / n
    m = np.eye(4)
    m[:3, :3] = [[1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
                 [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
                 [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)]]
    m[:3, 3] = (x, y, z)
    return m


def _floats(text: str | None, where: str, count: int | None = None) -> list[float]:
    try:
        vals = [float(t) for t in (text or "").split()]
    except ValueError:
        raise SdfError(f"{where}: expected numbers, got '{text}'") from None
    if count is not None and len(vals) != count:
        raise SdfError(f"{where}: expected {count} numbers, got {len(vals)} ('{(text or '').strip()}')")
    if not all(math.isfinite(v) for v in vals):
        raise SdfError(f"{where}: non-finite number in '{text}'")
    return vals


def _pose_of(elem: ET.Element, where: str, parent_name: str) -> np.ndarray:
    p = elem.find("pose")
    if p is None or not (p.text or "").strip():
        return np.eye(4)
    rel = p.get("relative_to", "").strip()
    if rel and rel != parent_name:
        raise SdfError(f"{where}: <pose relative_to='{rel}'> names a frame other than the parent "
                       f"('{parent_name}'); only parent-relative poses are supported")
    fmt = p.get("rotation_format", "euler_rpy")
    if fmt == "quat_xyzw":
        return _quat_matrix(*_floats(p.text, where + "/pose", 7))
    if fmt != "euler_rpy":
        raise SdfError(f"{where}: unknown rotation_format '{fmt}'")
    v = _floats(p.text, where + "/pose", 6)
    if p.get("degrees", "false").strip().lower() in ("true", "1"):
        v[3:] = [math.radians(a) for a in v[3:]]
    return pose_matrix(*v)


def _positive(geom: ET.Element, tag: str, where: str, count: int = 1) -> list[float]:
    e = geom.find(tag)
    if e is None:
        raise SdfError(f"{where}: <{tag}> missing")
    vals = _floats(e.text, f"{where}/{tag}", count)
    if any(v <= 0 for v in vals):
        raise SdfError(f"{where}/{tag}: must be positive, got {vals}")
    return vals


def _geometry(geom: ET.Element, where: str, world: World) -> tuple[str, dict] | None:
    kids = [c for c in geom if isinstance(c.tag, str)]
    if not kids:
        raise SdfError(f"{where}: <geometry> is empty")
    g = kids[0]
    if g.tag == "box":
        return "box", {"size": _positive(g, "size", where + "/box", 3)}
    if g.tag == "cylinder":
        return "cylinder", {"radius": _positive(g, "radius", where + "/cylinder")[0],
                            "length": _positive(g, "length", where + "/cylinder")[0]}
    if g.tag == "sphere":
        return "sphere", {"radius": _positive(g, "radius", where + "/sphere")[0]}
    if g.tag == "capsule":
        return "capsule", {"radius": _positive(g, "radius", where + "/capsule")[0],
                           "length": _positive(g, "length", where + "/capsule")[0]}
    if g.tag == "plane":
        n = g.find("normal")
        normal = _floats(n.text, where + "/plane/normal", 3) if n is not None else [0.0, 0.0, 1.0]
        if np.linalg.norm(normal) == 0:
            raise SdfError(f"{where}/plane/normal: zero vector")
        s = g.find("size")
        size = _floats(s.text, where + "/plane/size", 2) if s is not None else [100.0, 100.0]
        return "plane", {"normal": normal, "size": size}
    if g.tag in _SKIPPED_GEOMETRY:
        world.warnings.append(f"{where}: <{g.tag}> collision geometry is not supported by the embedded "
                              f"simulator and was skipped (the obstacle is missing from the simulation)")
        return None
    raise SdfError(f"{where}: unknown geometry <{g.tag}>")


def _walk_model(model: ET.Element, parent: np.ndarray, path: str, top: str, parent_name: str,
                world: World) -> None:
    name = model.get("name")
    if not name:
        raise SdfError(f"{path or 'world'}: <model> without a name")
    where = f"{path}::{name}" if path else name
    if model.find("include") is not None:
        raise SdfError(f"{where}: <include> needs model:// resources; inline the model instead")
    tf = parent @ _pose_of(model, where, parent_name)
    for link in model.findall("link"):
        lname = link.get("name") or "link"
        lwhere = f"{where}::{lname}"
        ltf = tf @ _pose_of(link, lwhere, name)
        for col in link.findall("collision"):
            cname = col.get("name") or "collision"
            cwhere = f"{lwhere}::{cname}"
            geom = col.find("geometry")
            if geom is None:
                raise SdfError(f"{cwhere}: <collision> without <geometry>")
            got = _geometry(geom, cwhere, world)
            if got is None:
                continue
            kind, params = got
            world.shapes.append(Shape(name=cwhere, model=top, kind=kind, params=params,
                                      pose=ltf @ _pose_of(col, cwhere, lname),
                                      terrain=top.startswith(("ground", "terrain"))))
    for sub in model.findall("model"):
        _walk_model(sub, tf, where, top, name, world)


def parse_world(text: str, source: str = "<string>") -> World:
    """World from SDF text. Raises SdfError on malformed or unsupported content."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SdfError(f"{source}: malformed XML: {exc}") from None
    if root.tag != "sdf":
        raise SdfError(f"{source}: root element is <{root.tag}>, expected <sdf>")
    w = root.find("world")
    if w is None:
        raise SdfError(f"{source}: no <world> element")
    world = World(name=w.get("name", "world"))
    if w.find("include") is not None:
        raise SdfError(f"{source}: <include> needs model:// resources; inline the model instead")
    for m in w.findall("model"):
        _walk_model(m, np.eye(4), "", m.get("name") or "", "world", world)
    if not world.shapes:
        raise SdfError(f"{source}: the world has no collision geometry")
    return world


def load_world(path: str | Path) -> World:
    """Read and parse an SDF world file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SdfError(f"cannot read world file {p}: {exc.strerror}") from None
    return parse_world(text, str(p))
