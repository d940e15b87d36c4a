"""Draws core.py's entities into a Rerun recording served to the browser (ROS-free).

`RerunSink(grpc_port, web_port, host)` starts Rerun's gRPC server on `host` (`newest_first`: a
browser that connects late starts at the latest frame) and its web viewer on `http://<host>:<web_port>/`
(WebAssembly served by the SDK itself: no network needed), with the shipped blueprint. The
`sim_time` timeline follows the messages' stamps (the simulator's /clock).
"""

from __future__ import annotations

import numpy as np

from .blueprint import APP_ID, blueprint
from .core import GOAL_COLOR, STATION_COLOR, ZONE_COLOR, Boxes, Cloud, MapImage, robot_color

__all__ = ["RerunSink"]


class RerunSink:
    def __init__(self, grpc_port: int = 9876, web_port: int = 9090, memory_limit: str = "512MiB", serve: bool = True,
                 host: str = "127.0.0.1") -> None:
        import rerun as rr

        self.rr = rr
        self.rec = rr.RecordingStream(APP_ID)
        self.grpc_url = ""
        self.web_url = ""
        if serve:
            # The data (gRPC) binds `host` only (default loopback: neither server authenticates);
            # the web page is the viewer's static code, no data, and the browser fetches the data
            # from the gRPC URL itself.
            sink = rr.GrpcServerSink(bind_ip=host, port=grpc_port, server_memory_limit=memory_limit, newest_first=True)
            self.rec.set_sinks(sink)
            self.rec.send_blueprint(blueprint(), make_active=True, make_default=True)
            self.grpc_url = sink.uri
            rr.serve_web_viewer(web_port=web_port, open_browser=False, connect_to=self.grpc_url)
            self.web_url = f"http://127.0.0.1:{web_port}/?url={self.grpc_url}"
        self.rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        self._map: MapImage | None = None
        self._styled: set[str] = set()
        self._robots: dict[str, int] = {}

    def _time(self, t: float) -> None:
        self.rec.set_time("sim_time", duration=float(t))

    def cloud(self, robot: str, index: int, t: float, cloud: Cloud) -> None:
        self._time(t)
        self.rec.log(f"world/robots/{robot}/cloud", self.rr.Points3D(cloud.points, colors=cloud.colors, radii=0.03))

    def obstacles(self, robot: str, index: int, t: float, boxes: Boxes) -> None:
        rr = self.rr
        self._time(t)
        rot = [rr.RotationAxisAngle(axis=[0, 0, 1], radians=float(y)) for y in boxes.yaws]
        self.rec.log(f"world/robots/{robot}/obstacles", rr.Boxes3D(
            centers=boxes.centers, half_sizes=boxes.half_sizes, rotation_axis_angles=rot or None,
            colors=[robot_color(index)] * len(boxes), radii=0.015, fill_mode=rr.components.FillMode.MajorWireframe))

    def robot(self, robot: str, index: int, t: float, x: float, y: float, strips: list[np.ndarray]) -> None:
        rr = self.rr
        self._robots.setdefault(robot, index)
        self._time(t)
        color = robot_color(index)
        self.rec.log(f"world/robots/{robot}/footprint", rr.LineStrips3D(strips, colors=[color] * len(strips), radii=0.04,
                                                                        labels=[robot, ""], show_labels=True))
        if self._map is not None:
            px = self._map.to_pixels(np.array([[x, y]]))
            self.rec.log(f"map2d/robots/{robot}", rr.Points2D(px, radii=4.0, colors=[color], labels=[robot], show_labels=True))

    def path(self, robot: str, index: int, t: float, points: np.ndarray) -> None:
        rr = self.rr
        self._time(t)
        color = robot_color(index)
        self.rec.log(f"world/robots/{robot}/path", rr.LineStrips3D([points], colors=[color], radii=0.05))
        if self._map is not None and len(points):
            self.rec.log(f"map2d/paths/{robot}", rr.LineStrips2D([self._map.to_pixels(points[:, :2])], colors=[color], radii=1.5))

    def goal(self, robot: str, index: int, t: float, x: float, y: float, label: str) -> None:
        rr = self.rr
        self._time(t)
        self.rec.log(f"world/robots/{robot}/goal", rr.Points3D([[x, y, 0.1]], radii=0.25, colors=[GOAL_COLOR], labels=[label], show_labels=True))
        if self._map is not None:
            self.rec.log(f"map2d/goals/{robot}", rr.Points2D(self._map.to_pixels(np.array([[x, y]])), radii=5.0, colors=[GOAL_COLOR], labels=[label]))

    def zones(self, t: float, zones: list[tuple[str, np.ndarray]]) -> None:
        rr = self.rr
        # Static, like the stations: the zones in force now (the policy's stamp may be on another
        # clock than the sweeps' when a listener runs without sim time).
        self._zones = zones
        self.rec.log("world/keep_out", rr.LineStrips3D([z for _, z in zones], colors=[ZONE_COLOR] * len(zones), radii=0.06,
                                                       labels=[f"keep-out: {i}" for i, _ in zones], show_labels=True), static=True)
        if self._map is not None:
            self.rec.log("map2d/keep_out", rr.LineStrips2D([self._map.to_pixels(z[:, :2]) for _, z in zones],
                                                         colors=[ZONE_COLOR] * len(zones), radii=2.0), static=True)

    def stations(self, points: np.ndarray, labels: list[str]) -> None:
        rr = self.rr
        self.rec.log("world/stations", rr.Points3D(points, radii=0.2, colors=[STATION_COLOR] * len(labels), labels=labels, show_labels=True), static=True)
        if self._map is not None:
            self.rec.log("map2d/stations", rr.Points2D(self._map.to_pixels(points[:, :2]), radii=4.0, colors=[STATION_COLOR] * len(labels),
                                                      labels=labels), static=True)
        self._stations = (points, labels)

    def map(self, image: MapImage) -> None:
        first = self._map is None
        self._map = image
        self.rec.log("map2d/grid", self.rr.Image(image.rgb), static=True)
        if first and getattr(self, "_stations", None) is not None:
            self.stations(*self._stations)
        if first and getattr(self, "_zones", None):
            self.zones(0.0, self._zones)

    def scalar(self, what: str, robot: str, t: float, value: float) -> None:
        rr = self.rr
        path = f"plots/{what}/{robot}"
        if path not in self._styled:  # the robot's colour, a line and its samples as dots (sparse series: balances)
            self._styled.add(path)
            color = robot_color(self._robots.setdefault(robot, len(self._robots)))
            self.rec.log(path, rr.SeriesLines(colors=[color], names=[robot], widths=[2.0]),
                         rr.SeriesPoints(colors=[color], names=[robot], marker_sizes=[3.0]), static=True)
        self._time(t)
        self.rec.log(path, rr.Scalars(float(value)))

    def close(self) -> None:
        try:
            self.rec.flush()
            self.rec.disconnect()
        except Exception:  # noqa: BLE001 - shutting down
            pass
