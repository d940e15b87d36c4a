"""The viewer layout shipped with the project (a Rerun blueprint), sent by the view node.

Left: the fleet in 3D (`world/**`: clouds, obstacle boxes, footprints, paths, keep-out zones,
stations, goals). Right, top: the top-down 2D map (`map2d/**`: the occupancy grid with robots,
paths and zones drawn in its pixels). Right, below: time series of speed, token balance and
batches anchored (`plots/<what>/<robot>`). `depai_nodes.view.blueprint.save(path)` writes it as
an .rbl file that a stand-alone viewer opens (File > Open).
"""

from __future__ import annotations

APP_ID = "depai"


def blueprint():
    import rerun as rr
    import rerun.blueprint as rrb

    def series(name: str, origin: str):
        # the last two simulated minutes, up to the time cursor (the newest sample while live)
        last = rr.VisibleTimeRange("sim_time", start=rr.TimeRangeBoundary.cursor_relative(seconds=-120.0),
                                   end=rr.TimeRangeBoundary.cursor_relative())
        return rrb.TimeSeriesView(name=name, origin=origin, time_ranges=[last])

    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Spatial3DView(name="fleet (3D, map frame)", origin="world", background=[24, 26, 30]),
            rrb.Vertical(
                rrb.Spatial2DView(name="map (top-down)", origin="map2d"),
                series("speed (m/s)", "plots/speed"),
                series("token balance (FLEET)", "plots/balance"),
                series("batches anchored", "plots/batches"),
                row_shares=[3, 1, 1, 1],
            ),
            column_shares=[3, 2],
        ),
        collapse_panels=True,
    )


def save(path: str) -> None:
    blueprint().save(APP_ID, path)
