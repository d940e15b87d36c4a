"""Draws core.py's entities for the Foxglove app: a Foxglove WebSocket server (ROS-free).

`FoxgloveSink(host, port)` starts foxglove-sdk's server (it speaks the `foxglove.sdk.v1`
subprotocol) and logs, in Foxglove's own schemas (protobuf):

| topic            | schema          | content                                                   |
|------------------|-----------------|-----------------------------------------------------------|
| /tf              | FrameTransforms | every transform of ROS /tf and /tf_static (robotN/ frames) |
| /scene           | SceneUpdate     | entities: `<robot>/footprint`, `<robot>/obstacles` (cubes), `<robot>/path`, `<robot>/goal`, `keep_out` (line loops + labels), `stations` |
| /<robot>/cloud   | PointCloud      | the downsampled sweep, x y z float32, in `map`             |
| /map             | Grid            | the occupancy grid (uint8 `occupancy`: 0..100, 255 unknown) |
| /plots           | JSON            | `{"robot", "what", "t", "value"}`: speed, balance, batches |

The layout for the Foxglove app is config/foxglove_layout.json (`python -m depai_nodes.view.foxglove_layout`).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .core import GOAL_COLOR, STATION_COLOR, ZONE_COLOR, Boxes, Cloud, MapImage, robot_color

__all__ = ["FoxgloveSink"]


def _color(rgb, a: float = 1.0):
    from foxglove.messages import Color

    return Color(r=rgb[0] / 255, g=rgb[1] / 255, b=rgb[2] / 255, a=a)


def _ts(t: float):
    from foxglove.messages import Timestamp

    ns = max(0, int(round(t * 1e9)))
    return Timestamp(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)


def _pose(x: float = 0.0, y: float = 0.0, z: float = 0.0, yaw: float = 0.0):
    from foxglove.messages import Pose, Quaternion, Vector3

    return Pose(position=Vector3(x=x, y=y, z=z), orientation=Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)))


class FoxgloveSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        import foxglove
        from foxglove.channels import FrameTransformsChannel, GridChannel, SceneUpdateChannel

        self.fg = foxglove
        # Latched content (stations, zones, the map, /tf_static): a client that subscribes later
        # gets it again at the next tick(); the server keeps no history of its own.
        self._latched: dict[tuple[str, str], tuple[object, object]] = {}
        self._resend = threading.Event()
        self.subscriptions = 0  # channels subscribed by clients now (the node's /diagnostics)
        sink = self

        class _Listener(foxglove.ServerListener):
            def on_subscribe(self, client, channel) -> None:  # a server thread: only raise a flag
                sink.subscriptions += 1
                sink._resend.set()

            def on_unsubscribe(self, client, channel) -> None:
                sink.subscriptions = max(0, sink.subscriptions - 1)

        self.server = foxglove.start_server(name="depai", host=host, port=port, server_listener=_Listener())
        self.port = self.server.port
        self.tf = FrameTransformsChannel("/tf")
        self.scene = SceneUpdateChannel("/scene")
        self.grid = GridChannel("/map")
        self.plots = foxglove.Channel("/plots")  # schemaless JSON
        self._clouds: dict[str, object] = {}

    # ---- helpers
    def _entity(self, entity_id: str, t: float, latched: bool = False, **primitives) -> None:
        from foxglove.messages import SceneEntity, SceneUpdate

        msg = SceneUpdate(entities=[SceneEntity(timestamp=_ts(t), frame_id="map", id=entity_id, **primitives)])
        self.scene.log(msg)
        if latched:
            self._latched[("/scene", entity_id)] = (self.scene, msg)

    def tick(self) -> None:
        """Re-send the latched content when a client subscribed since the last tick."""
        if self._resend.is_set():
            self._resend.clear()
            for channel, msg in list(self._latched.values()):
                channel.log(msg)

    @staticmethod
    def _line(points: np.ndarray, rgb, thickness: float, loop: bool = False):
        from foxglove.messages import LinePrimitive, LinePrimitiveLineType, Point3

        return LinePrimitive(type=LinePrimitiveLineType.LineStrip if not loop else LinePrimitiveLineType.LineLoop,
                             pose=_pose(), thickness=thickness, scale_invariant=False,
                             points=[Point3(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in points], color=_color(rgb))

    @staticmethod
    def _text(x: float, y: float, z: float, text: str, rgb):
        from foxglove.messages import TextPrimitive

        return TextPrimitive(pose=_pose(x, y, z), billboard=True, font_size=14.0, scale_invariant=True, color=_color(rgb), text=text)

    # ---- the sink interface (the same calls as RerunSink)
    def transforms(self, msg, static: bool = False) -> None:
        """A tf2_msgs/TFMessage (duck-typed) forwarded as FrameTransforms."""
        from foxglove.messages import FrameTransform, FrameTransforms, Quaternion, Timestamp, Vector3

        out = []
        for t in msg.transforms:
            tr, r = t.transform.translation, t.transform.rotation
            out.append(FrameTransform(timestamp=Timestamp(sec=int(t.header.stamp.sec), nsec=int(t.header.stamp.nanosec)),
                                      parent_frame_id=t.header.frame_id, child_frame_id=t.child_frame_id,
                                      translation=Vector3(x=tr.x, y=tr.y, z=tr.z), rotation=Quaternion(x=r.x, y=r.y, z=r.z, w=r.w)))
        if out:
            update = FrameTransforms(transforms=out)
            self.tf.log(update)
            if static:
                self._latched[("/tf", "static")] = (self.tf, update)

    def cloud(self, robot: str, index: int, t: float, cloud: Cloud) -> None:
        from foxglove.channels import PointCloudChannel
        from foxglove.messages import PackedElementField, PackedElementFieldNumericType, PointCloud

        channel = self._clouds.get(robot)
        if channel is None:
            channel = self._clouds[robot] = PointCloudChannel(f"/{robot}/cloud")
        f32 = PackedElementFieldNumericType.Float32
        fields = [PackedElementField(name=n, offset=4 * i, type=f32) for i, n in enumerate("xyz")]
        channel.log(PointCloud(timestamp=_ts(t), frame_id="map", pose=_pose(), point_stride=12, fields=fields,
                               data=np.ascontiguousarray(cloud.points, dtype="<f4").tobytes()))

    def obstacles(self, robot: str, index: int, t: float, boxes: Boxes) -> None:
        from foxglove.messages import CubePrimitive, Vector3

        cubes = [CubePrimitive(pose=_pose(*map(float, c), yaw=float(yaw)), size=Vector3(x=2 * h[0], y=2 * h[1], z=2 * h[2]),
                               color=_color(robot_color(index), 0.35))
                 for c, h, yaw in zip(boxes.centers, boxes.half_sizes, boxes.yaws)]
        self._entity(f"{robot}/obstacles", t, cubes=cubes)

    def robot(self, robot: str, index: int, t: float, x: float, y: float, strips: list[np.ndarray]) -> None:
        color = robot_color(index)
        self._entity(f"{robot}/footprint", t, lines=[self._line(s, color, 0.05) for s in strips],
                     texts=[self._text(x, y, 0.6, robot, color)])

    def path(self, robot: str, index: int, t: float, points: np.ndarray) -> None:
        self._entity(f"{robot}/path", t, lines=[self._line(points, robot_color(index), 0.06)] if len(points) else [])

    def goal(self, robot: str, index: int, t: float, x: float, y: float, label: str) -> None:
        from foxglove.messages import SpherePrimitive, Vector3

        self._entity(f"{robot}/goal", t, spheres=[SpherePrimitive(pose=_pose(x, y, 0.1), size=Vector3(x=0.4, y=0.4, z=0.4), color=_color(GOAL_COLOR))],
                     texts=[self._text(x, y, 0.5, label, GOAL_COLOR)])

    def zones(self, t: float, zones: list[tuple[str, np.ndarray]]) -> None:
        self._entity("keep_out", t, latched=True, lines=[self._line(z, ZONE_COLOR, 0.08, loop=True) for _, z in zones],
                     texts=[self._text(float(z[:, 0].mean()), float(z[:, 1].mean()), 0.4, f"keep-out: {i}", ZONE_COLOR) for i, z in zones])

    def stations(self, points: np.ndarray, labels: list[str]) -> None:
        from foxglove.messages import SpherePrimitive, Vector3

        self._entity("stations", 0.0, latched=True,
                     spheres=[SpherePrimitive(pose=_pose(*map(float, p)), size=Vector3(x=0.3, y=0.3, z=0.3), color=_color(STATION_COLOR)) for p in points],
                     texts=[self._text(float(p[0]), float(p[1]), 0.4, label, STATION_COLOR) for p, label in zip(points, labels)])

    def map(self, image: MapImage) -> None:
        from foxglove.messages import Grid, PackedElementField, PackedElementFieldNumericType, Vector2

        # The Grid's rows go from its origin upwards (row 0 = smallest y): undo the image's flip.
        value = (255 - image.rgb[::-1, :, 0]).astype(np.uint8)  # dark (occupied) -> high
        grid = Grid(timestamp=_ts(0.0), frame_id="map", pose=_pose(image.origin_x, image.origin_y),
                    column_count=image.width, cell_size=Vector2(x=image.resolution, y=image.resolution),
                    row_stride=image.width, cell_stride=1,
                    fields=[PackedElementField(name="occupancy", offset=0, type=PackedElementFieldNumericType.Uint8)],
                    data=value.tobytes())
        self.grid.log(grid)
        self._latched[("/map", "grid")] = (self.grid, grid)

    def scalar(self, what: str, robot: str, t: float, value: float) -> None:
        self.plots.log({"robot": robot, "what": what, "t": t, "value": value})

    def close(self) -> None:
        try:
            self.server.stop()
        except Exception:  # noqa: BLE001 - shutting down
            pass
