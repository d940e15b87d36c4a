"""ROS wiring of perception: ``points`` in, ``obstacles`` and ``local_costmap`` out.

The callback does three things: a zero-copy view of the cloud (depai_nodes.common.pointcloud2),
``Perception.process`` (the ROS-free core), and two publishes. Clouds that cannot be used — a
malformed layout, a wrong frame — are dropped with a throttled warning and counted; the node never
dies on input. Parameters are validated at start-up and on every ``ros2 param set``.
"""

from __future__ import annotations

import array
import sys
import time

from nav_msgs.msg import OccupancyGrid
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2

from depai.msg import Obstacle, ObstacleArray
from depai_nodes.common.params import declare_params
from depai_nodes.common.pointcloud2 import CloudFormatError, cloud_to_xyz
from depai_nodes.common.qos import CLOUD_QOS, RELIABLE_QOS, SENSOR_QOS
from depai_nodes.common.runner import run_node

from .core import Perception, PerceptionError, PerceptionParams, PerceptionResult

_WARN_PERIOD_S = 5.0


class PerceptionNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("perception", **kwargs)
        params = declare_params(self, PerceptionParams, on_change=self._on_params)
        self.perception = Perception(params)
        self.obstacles_pub = self.create_publisher(ObstacleArray, "obstacles", RELIABLE_QOS)
        self.costmap_pub = self.create_publisher(OccupancyGrid, "local_costmap", RELIABLE_QOS)
        # Reliable by default: with Fast DDS defaults a best-effort reader loses most 2.6 MB sweeps
        # (bench/transport.py). points_best_effort=true matches drivers that publish best effort.
        qos = SENSOR_QOS if params.points_best_effort else CLOUD_QOS
        self.create_subscription(PointCloud2, "points", self._on_cloud, qos)
        self.processed = 0
        self.dropped = 0
        self._last_warn: dict[str, float] = {}
        self._total_ms = 0.0
        # A periodic wake-up: the runner handles SIGINT/SIGTERM in Python, which only runs when
        # the executor's wait returns; without a timer an idle node would never see the signal.
        self.create_timer(0.5, lambda: None)
        self._diagnostics()
        self.get_logger().info(
            f"perception ready: {self.resolve_topic_name('points')} -> "
            f"{self.resolve_topic_name('obstacles')}, {self.resolve_topic_name('local_costmap')}")

    def _on_params(self, params: PerceptionParams) -> None:
        self.perception.params = params

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py): input `points` (WARN: none yet or none for 1 s of
        the node's clock), the processing time of a sweep, and `clouds` (WARN while the latest
        cloud was dropped: wrong frame or unusable layout, with the reason; OK: obstacles and
        costmap published)."""
        from depai_nodes.common.diagnostics import OK, WARN, NodeDiagnostics

        self.diag = NodeDiagnostics(self)
        self.diag_points = self.diag.diag.topic("points", stale_after=1.0)
        self.diag_sweep = self.diag.diag.timing("sweep")
        self._last_dropped = ""  # why the latest cloud was dropped ("" when it was used)

        def clouds():
            values = {"processed": self.processed, "dropped": self.dropped}
            if self._last_dropped:
                return WARN, f"dropping clouds: {self._last_dropped}", values
            return OK, f"{self.processed} sweep(s) processed, {self.dropped} dropped", values

        self.diag.diag.check("clouds", clouds)

    def _warn(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e9) >= _WARN_PERIOD_S:
            self._last_warn[key] = now
            self.get_logger().warning(f"{text} (dropped so far: {self.dropped})")

    def _on_cloud(self, msg: PointCloud2) -> None:
        self.diag_points.tick()
        expected = self.perception.params.expected_frame
        if expected and msg.header.frame_id != expected:
            self.dropped += 1
            self._last_dropped = f"frame '{msg.header.frame_id}', expected '{expected}'"
            self._warn("frame", f"cloud in frame '{msg.header.frame_id}', expected '{expected}': dropped")
            return
        try:
            xyz = cloud_to_xyz(msg)
            result = self.perception.process(xyz)
        except (CloudFormatError, PerceptionError) as error:
            self.dropped += 1
            self._last_dropped = f"unusable cloud: {error}"[:200]
            self._warn("format", f"unusable cloud: {error}")
            return
        self.obstacles_pub.publish(self._obstacles_msg(msg, result))
        self.costmap_pub.publish(self._costmap_msg(msg, result))
        self.processed += 1
        self._total_ms += result.timings_ms["total"]
        self.diag_sweep.add(result.timings_ms["total"] * 1e-3)
        self._last_dropped = ""

    @staticmethod
    def _obstacles_msg(cloud: PointCloud2, r: PerceptionResult) -> ObstacleArray:
        out = ObstacleArray()
        out.header = cloud.header
        items = []
        for o in r.obstacles:
            m = Obstacle()
            m.id = o.id
            m.centroid.x, m.centroid.y, m.centroid.z = (float(v) for v in o.centroid)
            m.box_min.x, m.box_min.y, m.box_min.z = (float(v) for v in o.box_min)
            m.box_max.x, m.box_max.y, m.box_max.z = (float(v) for v in o.box_max)
            m.point_count = o.point_count
            items.append(m)
        out.obstacles = items
        return out

    @staticmethod
    def _costmap_msg(cloud: PointCloud2, r: PerceptionResult) -> OccupancyGrid:
        g = OccupancyGrid()
        g.header = cloud.header
        g.info.map_load_time = cloud.header.stamp
        g.info.resolution = float(r.costmap_resolution)
        g.info.height, g.info.width = (int(n) for n in r.costmap.shape)
        g.info.origin.position.x, g.info.origin.position.y = (float(v) for v in r.costmap_origin)
        g.info.origin.orientation.w = 1.0
        data = array.array("b")
        data.frombytes(r.costmap.tobytes())  # one memcpy; the setter keeps array.array('b') as is
        g.data = data
        return g

    def on_shutdown(self) -> None:
        mean = self._total_ms / self.processed if self.processed else 0.0
        self.get_logger().info(f"processed {self.processed} sweeps (mean {mean:.1f} ms), dropped {self.dropped}")


def main(args=None) -> int:
    return run_node(PerceptionNode, args)


if __name__ == "__main__":
    sys.exit(main())
