"""ROS wiring of the monitor: subscribe to the listed topics, print a table every period.

It is what a person watching the stack wants from `ros2 topic hz` and `ros2 topic echo` at once,
for every topic that matters, in one terminal. It only subscribes, so it never alters the system.
"""

from __future__ import annotations

import importlib
import sys
import time

from pydantic import Field, field_validator
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from depai_nodes.common.params import READ_ONLY, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.common.runner import run_node

from .core import RateStats, parse_topic_spec, summarize

# `sensor`: best effort + volatile matches every publisher, reliable or not, but loses large
# samples (a 2.6 MB sweep is hundreds of fragments). `reliable` gets every sample of a reliable
# publisher, which every DePAI publisher is. `latched` also gets the last sample published before
# the monitor started.
_QOS = {
    "sensor": QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE),
    "reliable": QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE),
    "latched": LATCHED_QOS,
}


class MonitorParams(ParamsModel):
    topics: list[str] = Field(
        default_factory=lambda: ["/fleet/policy depai/msg/FleetPolicy latched"],
        description="'topic pkg/msg/Type [sensor|latched|reliable] [expected Hz]' entries to watch",
        json_schema_extra=READ_ONLY,  # subscriptions and timer are made at start
    )
    period: float = Field(2.0, gt=0.0, le=3600.0, description="s between summaries", json_schema_extra=READ_ONLY)

    @field_validator("topics")
    @classmethod
    def _parse(cls, topics: list[str]) -> list[str]:
        for text in topics:
            parse_topic_spec(text)
        return topics


def _message_type(type_name: str):
    package, _, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        raise ValueError(f"unknown message type '{type_name}'") from None


class MonitorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("monitor", **kwargs)
        self.params = declare_params(self, MonitorParams)
        self._stats: dict[str, RateStats] = {}
        self._last: dict[str, str] = {}
        # /diagnostics (common/diagnostics.py): `input <topic>` per watched topic (rate, age; WARN:
        # none yet, stale or slow against its expected rate when the entry gives one) and
        # `processing report` (the time the printed table takes)
        from depai_nodes.common.diagnostics import NodeDiagnostics

        self.diag = NodeDiagnostics(self)
        self._diag_topics = {}
        self._diag_report = self.diag.diag.timing("report")
        for text in self.params.topics:
            spec = parse_topic_spec(text)
            try:
                msg_type = _message_type(spec.type_name)
            except ValueError as error:
                from depai_nodes.common.params import ParameterError

                raise ParameterError("topics", str(error)) from None
            qos = _QOS[spec.qos]
            self._stats[spec.topic] = RateStats()
            self._diag_topics[spec.topic] = self.diag.diag.topic(self.resolve_topic_name(spec.topic), expected_rate=spec.rate,
                                                                stale_after=spec.stale_after)
            self.create_subscription(msg_type, spec.topic, lambda msg, t=spec.topic: self._on_message(t, msg), qos)
        self.create_timer(self.params.period, self._report)

    def _on_message(self, topic: str, msg) -> None:
        self._stats[topic].add(time.monotonic())
        self._diag_topics[topic].tick()
        self._last[topic] = summarize(msg)

    def _report(self) -> None:
        with self._diag_report.measure():
            self._print()

    def _print(self) -> None:
        now = time.monotonic()
        lines = []
        for topic, stats in self._stats.items():
            resolved = self.resolve_topic_name(topic)
            last = self._last.get(topic, "(nothing yet)")
            lines.append(f"{resolved:<28} {stats.rate(now):6.1f} Hz  total {stats.total:<6} {last}")
        self.get_logger().info("what flows:\n  " + "\n  ".join(lines))


def main(args=None) -> int:
    return run_node(MonitorNode, args)


if __name__ == "__main__":
    sys.exit(main())
