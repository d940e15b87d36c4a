"""The three QoS profiles every DePAI topic uses, so publishers and subscribers always match.

- SENSOR_QOS: small high-rate sensor data (odometry, scans). Best effort and a short queue: a
  late sample is worth less than the next one.
- CLOUD_QOS: full LiDAR sweeps (a 128 x 1024 PointCloud2 is 2.6 MB). Reliable, keep last 5.
  Measured between two processes (bench/transport.py): with Fast DDS's built-in transports a
  sweep does not fit the 512 KB shared-memory segment and goes over UDP in hundreds of fragments;
  best effort then delivered 7 of 50 (losing one fragment loses the sample), reliable 50 of 50 at
  p50 17 ms. With the stack's profile (config/fastdds.xml, a 16 MB segment, set by env.sh and the
  launch file) both deliver 50 of 50 at p50 about 6 ms; reliable stays the choice, for peers
  outside shared memory (another host). A best-effort subscriber still matches this publisher.
- LATCHED_QOS: state that changes rarely and that a late joiner must still get (fleet policy,
  maps, identity). Reliable + transient local, depth 1: the last value is kept for new subscribers.
- RELIABLE_QOS: commands, results and derived lists (cmd_vel, obstacles, plans). Reliable, volatile.
- TF_QOS / TF_STATIC_QOS: /tf and /tf_static, as tf2_ros's broadcasters and listeners use them
  (reliable keep-last 100; reliable transient-local), so stock tools and ours match both ways.
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

TF_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

TF_STATIC_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

__all__ = ["SENSOR_QOS", "CLOUD_QOS", "LATCHED_QOS", "RELIABLE_QOS", "TF_QOS", "TF_STATIC_QOS"]
