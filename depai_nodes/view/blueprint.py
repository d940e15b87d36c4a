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
    import rerun.blueprint as rrb

    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Spatial3DView(name="fleet (3D, map frame)", origin="world", background=[24, 26, 30],
                              # looking down on the warehouse from the south, a little tilted
                              eye_controls=rrb.EyeControls3D(position=[0.0, -21.0, 21.0], look_target=[0.0, -1.0, 0.0], eye_up=[0.0, 0.0, 1.0])),
            rrb.Vertical(
                rrb.Spatial2DView(name="map (top-down)", origin="map2d"),
                rrb.TimeSeriesView(name="speed (m/s)", origin="plots/speed"),
                rrb.TimeSeriesView(name="token balance (FLEET)", origin="plots/balance"),
                rrb.TimeSeriesView(name="batches anchored", origin="plots/batches"),
                row_shares=[3, 1, 1, 1],
            ),
            column_shares=[3, 2],
        ),
        collapse_panels=True,
    )


def save(path: str) -> None:
    blueprint().save(APP_ID, path)
