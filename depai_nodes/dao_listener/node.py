"""ROS wiring of the DAO listener: publishes /fleet/policy, latched.

Source `file`: reads a policy YAML and re-reads it when it changes on disk, so an operator can
edit the fleet's rules live on a test bench. An invalid edit is logged and ignored: the last
valid policy stays in force (a typo must never lift a keep-out zone).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field
from rclpy.node import Node

from depai.msg import FleetPolicy
from depai_nodes.common.params import ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.common.runner import run_node

from .core import Policy, PolicyError, load_policy_file, policy_to_msg

POLICY_TOPIC = "/fleet/policy"


class DaoListenerParams(ParamsModel):
    source: Literal["file"] = Field("file", description="where the policy comes from")
    policy_file: str = Field("", description="policy YAML (source=file); empty means the built-in default policy")
    frame_id: str = Field("map", min_length=1, description="frame of the keep-out polygons")
    watch_period: float = Field(1.0, gt=0.0, le=60.0, description="s between checks of the policy file for changes")


class DaoListenerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("dao_listener", **kwargs)
        self.params = declare_params(self, DaoListenerParams, on_change=self._on_params)
        self._publisher = self.create_publisher(FleetPolicy, POLICY_TOPIC, LATCHED_QOS)
        self._version = 0
        self._current: Policy | None = None
        self._mtime: float | None = None
        self._load(initial=True)
        self._timer = self.create_timer(self.params.watch_period, self._watch)

    def _on_params(self, params: DaoListenerParams) -> None:
        self.params = params
        self._timer.timer_period_ns = int(params.watch_period * 1e9)
        self._mtime = None
        self._load(initial=False)

    def _watch(self) -> None:
        path = self.params.policy_file
        if not path:
            return
        try:
            mtime = Path(path).stat().st_mtime
        except OSError:
            mtime = -1.0
        if mtime != self._mtime:
            self._load(initial=False)

    def _load(self, initial: bool) -> None:
        path = self.params.policy_file
        try:
            if path:
                self._mtime = Path(path).stat().st_mtime if Path(path).exists() else -1.0
                policy = load_policy_file(path)
            else:
                policy = Policy()
        except PolicyError as error:
            if initial:
                raise ParameterError("policy_file", str(error)) from None
            self.get_logger().error(f"{error}; keeping policy version {self._version}")
            return
        if policy == self._current:
            return
        self._current = policy
        self._version += 1
        source = f"file:{path}" if path else "default"
        msg = policy_to_msg(policy, self._version, source, self.params.frame_id, self.get_clock().now().to_msg())
        self._publisher.publish(msg)
        self.get_logger().info(
            f"policy v{self._version} from {source}: max_speed={policy.max_speed} m/s, paused={policy.paused}, "
            f"{len(policy.keep_out_zones)} keep-out zone(s)"
        )


def main(args=None) -> int:
    return run_node(DaoListenerNode, args)


if __name__ == "__main__":
    sys.exit(main())
