"""Named stations of a world: where delivery tasks send robots (one loader for every user).

A stations file sits next to its world: `worlds/<world>.stations.yaml` beside
`worlds/<world>.sdf`. It lists poses in the world's map frame with an id (what goes on chain as
the task's `station`, bytes32: at most 32 bytes of UTF-8) and an optional label:

    world: warehouse.sdf            # the SDF it belongs to (beside this file)
    stations:
      - {id: east_dock, label: "East dock", x: 12.0, y: 0.0, yaw: 0.0}
    ...

`load_stations(path)` validates the file (complete, no duplicate ids or keys, finite numbers,
yaw in [-pi, pi], the trailing `...` as for policy files) and raises `StationsError` naming the
station and field. `check_free(stations, world)` checks, against the world's ground-truth
occupancy (the embedded simulator's, the same the planner gets), that a robot of `robot_radius`
fits at each station: inside the mapped world, no obstacle cell within the radius.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .yamlfile import load_yaml_model

__all__ = ["StationsError", "Station", "StationsFile", "load_stations", "stations_path_for", "check_free"]


class StationsError(ValueError):
    """A stations file that cannot be read, is invalid, or names a station that is not free space."""


class Station(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="on-chain station name (bytes32): 1..32 bytes of UTF-8, printable")
    label: str = Field("", max_length=80, description="human-readable name")
    x: float = Field(allow_inf_nan=False, description="m, map frame")
    y: float = Field(allow_inf_nan=False, description="m, map frame")
    yaw: float = Field(0.0, ge=-math.pi - 1e-9, le=math.pi + 1e-9, allow_inf_nan=False, description="rad")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if len(value.encode()) > 32:
            raise ValueError("must fit bytes32 on chain: at most 32 bytes of UTF-8")
        if not value.isprintable() or value != value.strip():
            raise ValueError("must be printable, without surrounding spaces")
        return value


class StationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    world: str = Field(min_length=1, description="the SDF world file these stations belong to")
    stations: list[Station] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "StationsFile":
        ids = [s.id for s in self.stations]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate station id(s): {', '.join(dupes)}")
        return self

    def by_id(self, station_id: str) -> Station:
        for s in self.stations:
            if s.id == station_id:
                return s
        raise StationsError(f"no station '{station_id}'; known: {', '.join(s.id for s in self.stations)}")


def stations_path_for(world: str | Path) -> Path:
    """`worlds/warehouse.sdf` (or the name `warehouse`) -> `worlds/warehouse.stations.yaml`."""
    from depai_nodes.simulator.core import resolve_world

    sdf = resolve_world(str(world))
    return sdf.with_name(sdf.stem + ".stations.yaml")


def load_stations(path: str | Path) -> StationsFile:
    """Read and validate a stations file; StationsError says what and where."""
    return load_yaml_model(path, StationsFile, StationsError, "stations file", complete=True)


def check_free(stations: StationsFile, world: str | Path | None = None, *, robot_radius: float = 0.3,
               resolution: float = 0.1, base: Path | None = None) -> None:
    """Raise StationsError unless a robot of ``robot_radius`` fits at every station of ``world``.

    ``world`` defaults to the file's own `world`, resolved beside ``base`` (the stations file's
    folder) or as a world name. Uses the simulator's ground-truth occupancy of the SDF world.
    """
    from depai_nodes.simulator.core import SimParams, Simulator, resolve_world

    name = str(world if world is not None else stations.world)
    if world is None and base is not None and (base / name).is_file():
        name = str(base / name)
    try:
        sdf = resolve_world(name)
        sim = Simulator(SimParams(world=str(sdf), robots=["probe"], spawn_poses=[], robot_radius=robot_radius, publish_map=False))
        grid, ox, oy = sim.occupancy_map(resolution)
    except ValueError as e:  # SimulatorError, SdfError
        raise StationsError(f"cannot check the stations against world {name}: {e}") from None
    h, w = grid.shape
    reach = int(math.ceil(robot_radius / resolution))
    for s in stations.stations:
        col, row = int((s.x - ox) // resolution), int((s.y - oy) // resolution)
        if not (reach <= col < w - reach and reach <= row < h - reach):
            raise StationsError(f"station {s.id} at ({s.x:g}, {s.y:g}) lies outside world {sdf.stem}")
        rr, cc = [a - reach for a in (row, col)]
        window = grid[rr:rr + 2 * reach + 1, cc:cc + 2 * reach + 1]
        ys, xs = (math.nan, math.nan)
        for i in range(window.shape[0]):
            for j in range(window.shape[1]):
                cx = ox + (cc + j + 0.5) * resolution
                cy = oy + (rr + i + 0.5) * resolution
                if window[i, j] and math.hypot(cx - s.x, cy - s.y) <= robot_radius + resolution * 0.71:
                    ys, xs = cy, cx
                    break
            if not math.isnan(ys):
                break
        if not math.isnan(ys):
            raise StationsError(f"station {s.id} at ({s.x:g}, {s.y:g}) is not free space in world {sdf.stem}: "
                                f"an obstacle at ({xs:.2f}, {ys:.2f}) lies within the robot radius {robot_radius:g} m")
