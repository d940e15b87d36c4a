"""ROS wiring of the DAO listener: publishes /fleet/policy, latched, and re-publishes it as a heartbeat.

Source `file`: reads a policy YAML and re-reads it when it changes on disk, so an operator can
edit the fleet's rules live on a test bench. A file is taken whole or refused whole (see core):
an invalid, empty, truncated or duplicate-key edit is logged and ignored, and the last valid
policy stays in force (a typo must never lift a keep-out zone). Each run of the listener is its
own source identity, ``file:<path>@<start time>``, whose versions count from 1: a restarted
listener is a new sequence for the robots, never an "older" version they would ignore.

Source `chain`: follows the FleetPolicy contract that the DAO governs (see chain_source.py):
the config file `depai chain up` writes (or a peaq/agung one), read-only, no key. The message's
version is the on-chain policy version and its source the chain source's identity
``chain:<chain id>:<genesis[:10]>:<FleetPolicy address>`` (INTERFACES item 3); versions are
compared only within one identity. Each DAO decision is checked (the timelock's execution or the
guardian's pause), applied once and logged with its proposal id and transaction hash; a persisted
cursor (``state_dir``) makes that hold across restarts, and reorgs un-apply what they remove.
A chain event reaches the executor through a guard condition, not a polling timer.

Every ``heartbeat_period`` (a steady clock, whatever the ROS clock does) the current policy is
published again with a fresh stamp, while the source confirms it (INTERFACES item 6: the chain
read successfully, the file readable, within ``source_timeout``): the controllers treat a policy
they have not received for their ``policy_timeout`` as stale and hold still, so a dead listener
or an unreachable chain stops the fleet.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import Field
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from depai.msg import FleetPolicy
from depai_nodes.common.lifecycle import ManagedNode
from depai_nodes.common.params import READ_ONLY, ParameterError, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.common.runner import run_node

from .core import Policy, PolicyError, load_policy_file, policy_to_msg

POLICY_TOPIC = "/fleet/policy"


class DaoListenerParams(ParamsModel):
    source: Literal["file", "chain"] = Field("file", description="where the policy comes from: a YAML file or the FleetPolicy contract", json_schema_extra=READ_ONLY)
    policy_file: str = Field("", description="policy YAML (source=file); empty means the built-in default policy")
    frame_id: str = Field("map", min_length=1, description="frame of the keep-out polygons", json_schema_extra=READ_ONLY)
    watch_period: float = Field(1.0, gt=0.0, le=60.0, description="s between checks of the policy file for changes")
    heartbeat_period: float = Field(1.0, gt=0.0, le=60.0, description="s between re-publications of the current policy (steady clock); keep it well below the controllers' policy_timeout")
    chain_config: str = Field("", description="chain config file (source=chain); empty: .depai/chain.local.json or $DEPAI_CHAIN_CONFIG", json_schema_extra=READ_ONLY)
    chain_transport: Literal["auto", "ws", "poll"] = Field("auto", description="event delivery (source=chain): WebSocket, polling, or WebSocket with polling fallback", json_schema_extra=READ_ONLY)
    source_timeout: float = Field(5.0, gt=0.0, le=600.0, description="s; the heartbeat stops once the source has not confirmed the policy for this long (chain: no successful read; file: not readable)")
    confirmations: int = Field(-1, ge=-1, le=1000, description="blocks on top before a policy decision is applied (source=chain); -1: the chain config's", json_schema_extra=READ_ONLY)
    state_dir: str = Field("", description="where the applied-decision cursor is kept (source=chain); empty: $DEPAI_STATE_DIR or .depai/state", json_schema_extra=READ_ONLY)


class DaoListenerNode(ManagedNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("dao_listener", **kwargs)
        self.params = declare_params(self, DaoListenerParams, on_change=self._on_params)
        self._publisher = self.create_publisher(FleetPolicy, POLICY_TOPIC, LATCHED_QOS)
        self._epoch = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        self._version = 0
        self._source = ""
        self._current: Policy | None = None
        self._msg: FleetPolicy | None = None
        self._mtime: tuple[int, int] | None = None
        self._chain = None
        self._inbox: queue.Queue = queue.Queue()
        self._file_confirmed = time.monotonic()  # file source: the file was readable at the last check
        self._beating = True                     # False while the heartbeat is stopped (source down)
        self._wake = self.create_guard_condition(self._drain_chain)  # log lines of the chain source, at once
        self._send_active = False  # publishing only while active (lifecycle)
        self._lock = threading.RLock()  # the policy state: a chain policy is published from the source's thread
        self._timer = self.create_timer(self.params.watch_period, self._watch)
        self._heartbeat = self.create_timer(self.params.heartbeat_period, self._beat,
                                            clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._diagnostics()

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py), beside `lifecycle`: `policy` (the policy in force,
        its version and source, the source's confirmation age (steady clock, as source_timeout);
        ERROR: no policy, or not confirmed for source_timeout: the heartbeat stopped and the robots
        hold still; WARN: not active (not published), or confirmation older than half the
        timeout) and `source` (file: WARN when the last edit was refused, the last valid policy
        stays; chain: the last confirmed block; WARN: reads failing, retrying; ERROR: the contract
        is not trusted)."""
        from depai_nodes.common.diagnostics import ERROR, OK, WARN

        self._file_error = ""  # why the last edit of the policy file was refused ("" when none was)
        diag = self.diagnostics.diag

        def policy():
            cur, msg = self._current, self._msg
            if cur is None or msg is None:
                return ERROR, "no policy: nothing is published, the robots hold still", {"version": 0}
            age = self._source_age()
            values = {"version": self._version, "source": self._source, "max_speed": cur.max_speed, "paused": cur.paused,
                      "zones": len(cur.keep_out_zones), "confirmed_age_s": f"{age:.1f}" if age != float("inf") else "never",
                      "source_timeout": self.params.source_timeout}
            if not self._send_active:
                return WARN, f"policy v{self._version} held, not published ({self.lifecycle_state})", values
            if age > self.params.source_timeout:
                return ERROR, (f"source not confirmed for {values['confirmed_age_s']} s (limit {self.params.source_timeout:g} s): "
                               "heartbeat stopped, the robots hold still"), values
            if age > self.params.source_timeout / 2:
                return WARN, f"policy v{self._version}: source confirmation late ({age:.1f} s)", values
            return OK, f"policy v{self._version} published" + (" (fleet paused)" if cur.paused else ""), values

        def source():
            if self.params.source == "file":
                values = {"kind": "file", "path": self.params.policy_file or "(built-in default)"}
                if self._file_error:
                    return WARN, f"last edit refused, v{self._version} stays: {self._file_error}"[:400], values
                return OK, f"file {values['path']}", values
            src = self._chain
            if src is None:
                return WARN, "chain source not running", {"kind": "chain"}
            values = {"kind": "chain", "rpc_url": src.config.rpc_url, "block": src.confirmed_block,
                      "failures": src.outage.failures, "resets": src.resets}
            if src.untrusted:
                return ERROR, f"FleetPolicy contract not trusted: {src.untrusted}"[:400], values
            if src.outage.down:
                return WARN, f"chain reads failing ({src.outage.failures} in a row): retrying", values
            if src.confirmed_block < 0:
                return WARN, "no chain read yet", values
            return OK, f"chain block {src.confirmed_block}", values

        diag.check("policy", policy)
        diag.check("source", source)

    # ---- lifecycle (common/lifecycle.py): configure reads the file or the chain config; activate
    # publishes and heartbeats (chain: starts following the contract); deactivate stops both, so the
    # robots hold still after their policy_timeout; the policy and its version stay for reactivation.
    def configure_managed(self) -> None:
        if self.params.source == "chain":
            self._start_chain()
        else:
            try:
                self._load(self.params.policy_file)
            except PolicyError as error:
                raise ParameterError("policy_file", str(error)) from None

    def activate_managed(self) -> None:
        if self.params.source == "chain":
            if self._chain is None:
                self._start_chain()
            self._chain.start()
        self._beating = True
        self._file_confirmed = time.monotonic()
        self._send_active = True
        self._send()

    def deactivate_managed(self) -> None:
        self._send_active = False
        if self._chain is not None:
            self._chain.stop()
            self._chain = None  # a source thread runs once: activation builds a new one

    def cleanup_managed(self) -> None:
        self._mtime = None
        self._chain = None  # configured, never started: nothing runs yet

    def _start_chain(self) -> None:
        from depai_nodes.chain.errors import ChainError

        from .chain_source import ChainPolicySource

        from depai_nodes.chain.config import repo_root

        p = self.params
        state_dir = p.state_dir or os.environ.get("DEPAI_STATE_DIR") or str(repo_root() / ".depai" / "state")
        try:
            self._chain = ChainPolicySource(
                p.chain_config or None,
                on_policy=lambda policy, version, source: self._post(("policy", policy, version, source)),
                on_error=lambda text: self._post(("error", text)),
                on_info=lambda text: self._post(("info", text)),
                on_applied=lambda d: self._post(("applied", d)),
                on_unapplied=lambda d, why: self._post(("unapplied", d, why)),
                transport=p.chain_transport,
                check_period_s=min(2.0, p.source_timeout / 3.0),
                state_dir=state_dir,
                confirmations=None if p.confirmations < 0 else p.confirmations,
            )  # started by activate_managed
        except ChainError as error:  # a missing or invalid config file: a configuration error
            raise ParameterError("chain_config", str(error)) from None

    def _post(self, item: tuple) -> None:
        """From the chain source's threads. A policy is published right there (under the lock:
        no executor wake-up on the path from the chain to the robots); the rest is queued for
        the executor, which is woken."""
        if item[0] == "policy":
            with self._lock:
                self._take(*item[1:])
            return
        self._inbox.put(item)
        try:
            self._wake.trigger()
        except Exception:  # the node is shutting down; the queue is drained by nobody
            pass

    def _drain_chain(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item[0] == "error":
                self.get_logger().error(f"{item[1]} (policy v{self._version} from {self._source or 'nowhere'} stays in force)")
                continue
            if item[0] == "info":
                self.get_logger().info(item[1])
                continue
            if item[0] == "applied":
                self.get_logger().info(f"applied policy decision {item[1].describe()}")
                continue
            if item[0] == "unapplied":
                self.get_logger().warning(f"un-applied policy decision {item[1].describe()}: {item[2]}")
                continue
            with self._lock:
                self._take(*item[1:])

    def _take(self, policy: Policy, version: int, source: str) -> None:
        """Publish a policy from the chain source (under the lock) unless it is the one in force."""
        if source == self._source and version == self._version and policy == self._current:
            return  # already published
        if source != self._source and self._source:
            self.get_logger().warning(f"policy source changed: {self._source} -> {source}; "
                                      "its versions are a new sequence")
        elif source == self._source and version < self._version:
            # The chain went back (restored from an older state): what it says now is the
            # policy. Robots refuse a lower version while the old one is fresh, so they hold
            # still for their policy_timeout, then follow this one.
            self.get_logger().warning(f"{source} went back from policy v{self._version} to v{version}; "
                                      "publishing what the chain says now")
        self._adopt(policy, version, source)

    def _adopt(self, policy: Policy, version: int, source: str) -> None:
        self._current, self._version, self._source = policy, version, source
        self._msg = policy_to_msg(policy, version, source, self.params.frame_id)
        self._send()
        self.get_logger().info(
            f"policy v{version} from {source}: max_speed={policy.max_speed} m/s, paused={policy.paused}, "
            f"{len(policy.keep_out_zones)} keep-out zone(s)"
        )

    def _send(self) -> None:
        with self._lock:
            if self._msg is not None and self._send_active:
                self._msg.header.stamp = self.get_clock().now().to_msg()
                self._publisher.publish(self._msg)

    def _source_age(self) -> float:
        """Seconds since the source last confirmed the policy (INTERFACES item 6)."""
        if self.params.source == "chain":
            return time.monotonic() - (self._chain.last_confirmed if self._chain is not None else -float("inf"))
        return time.monotonic() - self._file_confirmed

    def _beat(self) -> None:
        if not self._send_active:
            return
        if self.params.source == "chain":
            self._drain_chain()
        age = self._source_age()
        fresh = age <= self.params.source_timeout
        if fresh != self._beating and self._msg is not None:
            self._beating = fresh
            if fresh:
                self.get_logger().info(f"policy source confirms policy v{self._version} again: heartbeat of {POLICY_TOPIC} resumed")
            else:
                self.get_logger().error(
                    f"policy source not confirmed for {age:.1f} s (source_timeout {self.params.source_timeout:g} s): "
                    f"heartbeat of {POLICY_TOPIC} stopped, robots hold still after their policy_timeout")
        if fresh:
            self._send()

    def destroy_node(self) -> None:
        if self._chain is not None and self._chain._thread.is_alive():
            self._chain.stop()
        super().destroy_node()

    def _on_params(self, params: DaoListenerParams) -> None:
        """All or nothing: a new policy_file that does not load fails the set, the old one stays."""
        old = self.params
        if params.source == "chain" and params.policy_file != old.policy_file:
            raise ParameterError("policy_file", "has no effect with source 'chain' (the policy comes from the chain)")
        if params.source == "file" and params.policy_file != old.policy_file:
            try:
                self._load(params.policy_file)
            except PolicyError as error:
                raise ParameterError("policy_file", str(error)) from None
        self.params = params
        if params.watch_period != old.watch_period:
            self._timer.timer_period_ns = int(params.watch_period * 1e9)
        if params.heartbeat_period != old.heartbeat_period:
            self._heartbeat.timer_period_ns = int(params.heartbeat_period * 1e9)

    def _watch(self) -> None:
        if self.params.source == "chain":
            self._drain_chain()
            return
        if not self._send_active:
            return
        path = self.params.policy_file
        if not path:
            self._file_confirmed = time.monotonic()  # the built-in default is always there
            return
        mtime = self._stat(path)
        if mtime is not None and os.access(path, os.R_OK):
            # The file is the source: while it is readable it confirms the last valid policy (an
            # invalid edit is refused and logged, but an operator's typo must not halt the fleet).
            self._file_confirmed = time.monotonic()
        if mtime != self._mtime:
            self._mtime = mtime  # an invalid edit is reported once, not at every watch
            try:
                self._load(path)
                self._file_error = ""
            except PolicyError as error:
                self._file_error = str(error)
                self.get_logger().error(f"{error}; keeping policy v{self._version} from {self._source}")

    @staticmethod
    def _stat(path: str) -> tuple[int, int] | None:
        """(mtime ns, size): a change of either means the file must be read again."""
        try:
            st = Path(path).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _load(self, path: str) -> None:
        """Read ``path`` (empty: the built-in default) and publish it if it changed; PolicyError
        (nothing changed) when it is not a valid, complete policy file."""
        mtime = self._stat(path) if path else None
        policy = load_policy_file(path) if path else Policy()
        self._mtime = mtime
        source = f"file:{Path(path).resolve()}@{self._epoch}" if path else f"default@{self._epoch}"
        if policy == self._current and source == self._source:
            return
        self._adopt(policy, self._version + 1, source)


def main(args=None) -> int:
    return run_node(DaoListenerNode, args)


if __name__ == "__main__":
    sys.exit(main())
