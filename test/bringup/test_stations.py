"""Stations files: one loader, validated, and every station checked free in its world."""

from pathlib import Path

import pytest

from depai_nodes.common.stations import StationsError, check_free, load_stations, stations_path_for

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: str, name: str = "s.stations.yaml") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


@pytest.mark.parametrize("world", ["warehouse", "yard", "depot"])
def test_every_shipped_world_has_valid_free_stations(world):
    path = stations_path_for(world)
    assert path.is_file(), f"worlds/{world}.sdf has no stations file"
    check_free(load_stations(path), world, robot_radius=0.3)


def test_shipped_warehouse_stations_are_valid_and_free():
    path = stations_path_for("warehouse")
    assert path == REPO / "worlds" / "warehouse.stations.yaml"
    stations = load_stations(path)
    assert len(stations.stations) >= 4
    check_free(stations, "warehouse")  # raises if one is in an obstacle or outside the hall
    assert stations.by_id("east_bay").x == 12.0


@pytest.mark.parametrize("body, what", [
    ("world: warehouse.sdf\nstations:\n  - {id: a, x: 0, y: 0}\n  - {id: a, x: 1, y: 0}\n...\n", "duplicate station id"),
    ("world: warehouse.sdf\nstations:\n  - {id: " + "x" * 33 + ", x: 0, y: 0}\n...\n", "bytes32"),
    ("world: warehouse.sdf\nstations:\n  - {id: a, x: 0, y: 0, yaw: 7}\n...\n", "yaw"),
    ("world: warehouse.sdf\nstations:\n  - {id: a, x: .nan, y: 0}\n...\n", "x"),
    ("world: warehouse.sdf\nstations:\n  - {id: a, x: 0, y: 0}\n", "end-of-document"),
    ("world: warehouse.sdf\nstations:\n  - {id: a, x: 0, y: 0, z: 1}\n...\n", "z"),
    ("world: warehouse.sdf\nstations: []\n...\n", "stations"),
    ("world: warehouse.sdf\nworld: yard.sdf\nstations:\n  - {id: a, x: 0, y: 0}\n...\n", "duplicate key"),
    ("", "empty"),
])
def test_bad_files_are_refused_with_the_reason(tmp_path, body, what):
    with pytest.raises(StationsError, match=what):
        load_stations(write(tmp_path, body))


def test_a_station_in_an_obstacle_or_outside_the_world_is_refused(tmp_path):
    # shelf_0 of the warehouse stands at (-10, 6): its uprights are solid
    inside = load_stations(write(tmp_path, "world: warehouse.sdf\nstations:\n  - {id: ok, x: 0, y: 0}\n"
                                            "  - {id: shelf, x: -11.95, y: 6.0}\n...\n"))
    with pytest.raises(StationsError, match="shelf .* is not free space"):
        check_free(inside, "warehouse")
    outside = load_stations(write(tmp_path, "world: warehouse.sdf\nstations:\n  - {id: far, x: 300, y: 0}\n...\n", "o.yaml"))
    with pytest.raises(StationsError, match="far .* outside world"):
        check_free(outside, "warehouse")
    missing = load_stations(write(tmp_path, "world: nowhere.sdf\nstations:\n  - {id: a, x: 0, y: 0}\n...\n", "m.yaml"))
    with pytest.raises(StationsError, match="cannot check"):
        check_free(missing)
