"""ROS wiring of the DAO listener: publishes /fleet/policy, latched.

Source `file`: reads a policy YAML and re-reads it when it changes on disk, so an operator can
edit the fleet's rules live on a test bench. An invalid edit is logged and ignored: the last
valid policy stays in force (a typo must never lift a keep-out zone).

Source `chain`: follows the FleetPolicy contract that the DAO governs (see chain_source.py):
the config file `depai chain up` writes (or a peaq/agung one), read-only, no key. The message's
version is the on-chain policy version and its source is "chain:<chain id>:<address>".
"""

from __future__ import annotations

import queue
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
    source: Literal["file", "chain"] = Field("file", description="where the policy comes from: a YAML file or the FleetPolicy contract")
    policy_file: str = Field("", description="policy YAML (source=file); empty means the built-in default policy")
    frame_id: str = Field("map", min_length=1, description="frame of the keep-out polygons")
    watch_period: float = Field(1.0, gt=0.0, le=60.0, description="s between checks of the policy file for changes")
    chain_config: str = Field("", description="chain config file (source=chain); empty: .depai/chain.local.json or $DEPAI_CHAIN_CONFIG")
    chain_transport: Literal["auto", "ws", "poll"] = Field("auto", description="event delivery (source=chain): WebSocket, polling, or WebSocket with polling fallback")


class DaoListenerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("dao_listener", **kwargs)
        self.params = declare_params(self, DaoListenerParams, on_change=self._on_params)
        self._publisher = self.create_publisher(FleetPolicy, POLICY_TOPIC, LATCHED_QOS)
        self._version = 0
        self._current: Policy | None = None
        self._mtime: float | None = None
        self._chain = None
        self._inbox: queue.Queue = queue.Queue()
        if self.params.source == "chain":
            self._start_chain()
        else:
            self._load(initial=True)
        self._timer = self.create_timer(self.params.watch_period, self._watch)

    def _start_chain(self) -> None:
        from depai_nodes.chain.errors import ChainError

        from .chain_source import ChainPolicySource

        try:
            self._chain = ChainPolicySource(
                self.params.chain_config or None,
                on_policy=lambda policy, version, source: self._inbox.put(("policy", policy, version, source)),
                on_error=lambda text: self._inbox.put(("error", text)),
                transport=self.params.chain_transport,
            ).start()
        except ChainError as error:  # a missing or invalid config file: a configuration error
            raise ParameterError("chain_config", str(error)) from None

    def _drain_chain(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item[0] == "error":
                self.get_logger().error(f"{item[1]} (policy version {self._version} stays in force)")
                continue
            _, policy, version, source = item
            self._current, self._version = policy, version
            msg = policy_to_msg(policy, version, source, self.params.frame_id, self.get_clock().now().to_msg())
            self._publisher.publish(msg)
            self.get_logger().info(
                f"policy v{version} from {source}: max_speed={policy.max_speed} m/s, paused={policy.paused}, "
                f"{len(policy.keep_out_zones)} keep-out zone(s)"
            )

    def destroy_node(self) -> None:
        if self._chain is not None:
            self._chain.stop()
        super().destroy_node()

    def _on_params(self, params: DaoListenerParams) -> None:
        fixed = ("source", "chain_config", "chain_transport")
        if any(getattr(params, k) != getattr(self.params, k) for k in fixed):
            self.get_logger().warning("source, chain_config and chain_transport take effect at the next start; keeping the current ones")
            params = params.model_copy(update={k: getattr(self.params, k) for k in fixed})
        self.params = params
        self._timer.timer_period_ns = int(params.watch_period * 1e9)
        if params.source == "file":
            self._mtime = None
            self._load(initial=False)

    def _watch(self) -> None:
        if self.params.source == "chain":
            self._drain_chain()
            return
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
