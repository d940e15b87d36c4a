"""The three QoS profiles every DePAI topic uses, so publishers and subscribers always match.

- SENSOR_QOS: small high-rate sensor data (odometry, scans). Best effort and a short queue: a
  late sample is worth less than the next one.
- CLOUD_QOS: full LiDAR sweeps (a 128 x 1024 PointCloud2 is 2.6 MB). Reliable, keep last 5.
  Measured between two processes on Fast DDS (bench/transport.py): best effort delivered 7 of
  200 such sweeps (each is hundreds of fragments, and losing one loses the sample), reliable 200
  of 200 at p50 18 ms. A best-effort subscriber still matches this publisher.
- LATCHED_QOS: state that changes rarely and that a late joiner must still get (fleet policy,
  maps, identity). Reliable + transient local, depth 1: the last value is kept for new subscribers.
- RELIABLE_QOS: commands, results and derived lists (cmd_vel, obstacles, plans). Reliable, volatile.
"""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)

LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

CLOUD_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

RELIABLE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

__all__ = ["SENSOR_QOS", "CLOUD_QOS", "LATCHED_QOS", "RELIABLE_QOS"]
