"""The three QoS profiles every DePAI topic uses, so publishers and subscribers always match.

- SENSOR_QOS: high-rate sensor data (clouds, scans). Best effort and a short queue: a late sweep
  is worth less than the next one, and reliable delivery of 1.5 MB clouds would add latency.
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

RELIABLE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

__all__ = ["SENSOR_QOS", "LATCHED_QOS", "RELIABLE_QOS"]
