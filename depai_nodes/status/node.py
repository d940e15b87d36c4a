"""ROS wiring of the fleet status table: subscribe, read the chain (no key), print frames.

Per robot it follows `<robot>/navigation_status`, `<robot>/identity` (balance, stake) and
`<robot>/wallet/account` (the machine's address); for the fleet `/fleet/policy`. A worker thread
reads the chain with a read-only client every `period` s (head block, TaskMarket and
DataRegistry events since the deployment; a new genesis starts the counts over). Every `period`
s the table (core.render) is written to stdout as one block; at shutdown a summary with the same
figures. `depai launch` redraws the block in place on a terminal (bringup/console.py); elsewhere
(a log, `ros2 launch`) the blocks are plain lines.
"""

from __future__ import annotations

import sys
import threading
import time

from pydantic import Field
from rclpy.node import Node

from depai.msg import FleetPolicy, MachineAccount, MachineIdentity, NavigationStatus
from depai_nodes.common.params import READ_ONLY, ParamsModel, declare_params
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS
from depai_nodes.common.runner import run_node

from .core import FleetView, render


class StatusParams(ParamsModel):
    robots: list[str] = Field(default_factory=list, description="robot namespaces to show (the stack passes $(robots))", json_schema_extra=READ_ONLY)
    period: float = Field(2.0, ge=0.2, le=3600.0, description="s between two tables (and chain reads)")
    chain: bool = Field(True, description="read tasks, payments, batches and the block height from the chain", json_schema_extra=READ_ONLY)
    chain_config: str = Field("", description="chain config (read-only use); empty: $DEPAI_CHAIN_CONFIG or .depai/chain.local.json", json_schema_extra=READ_ONLY)


class StatusNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("status", **kwargs)
        self.params = declare_params(self, StatusParams, on_change=self._on_params)
        self.view = FleetView()
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        for robot in self.params.robots:
            self.view.robot(robot)
            ns = f"/{robot}"
            self.create_subscription(NavigationStatus, f"{ns}/navigation_status", lambda m, r=robot: self._on_nav(r, m), RELIABLE_QOS)
            self.create_subscription(MachineIdentity, f"{ns}/identity", lambda m, r=robot: self._on_identity(r, m), LATCHED_QOS)
            self.create_subscription(MachineAccount, f"{ns}/wallet/account", lambda m, r=robot: self._on_account(r, m), LATCHED_QOS)
        self.create_subscription(FleetPolicy, "/fleet/policy", self._on_policy, LATCHED_QOS)
        self.client = self.config = None
        self._market = self._data = None
        self._genesis: str | None = None
        self._next_block = 0
        if self.params.chain:
            from depai_nodes.chain.wiring import load_node_chain

            self.config, self.client = load_node_chain(self.params, require=("TaskMarket", "DataRegistry"))
        self._diagnostics()  # before the worker: it feeds the chain entry
        self.stop_event = threading.Event()
        self.worker = threading.Thread(target=self._work, name="status-chain", daemon=True)
        if self.client is not None:
            self.worker.start()
        from rclpy.clock import Clock, ClockType

        # a steady timer: the table keeps coming while sim time stands still (no simulator, paused)
        self.timer = self.create_timer(self.params.period, self._print, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py): input `<robot>/navigation_status` per robot (WARN:
        none yet or none for 2 s: that robot's controller is silent), input /fleet/policy (WARN:
        none for 5 s, the fleet holds still), `chain` (with `chain: true`; WARN a failed read,
        ERROR unreachable for 3 periods, at least 15 s; OK with the block height)."""
        from depai_nodes.common.diagnostics import ChainHealth, NodeDiagnostics

        self.diag = NodeDiagnostics(self)
        self.diag_nav = {r: self.diag.diag.topic(f"/{r}/navigation_status", stale_after=2.0) for r in self.params.robots}
        self.diag_policy = self.diag.diag.topic("/fleet/policy", stale_after=5.0)
        if self.client is not None:
            p = self.params
            self.chain_health = ChainHealth(error_after=max(15.0, 3 * p.period), stale_after=3 * p.period + self.config.rpc_timeout_s)
            self.chain_health.extra["rpc_url"] = self.config.rpc_url
            self.diag.diag.check("chain", self.chain_health.check)

    def _on_params(self, params: StatusParams) -> None:
        self.params = params

    def _on_nav(self, robot: str, m: NavigationStatus) -> None:
        self.diag_nav[robot].tick()
        with self.lock:
            self.view.on_navigation(robot, m.state, m.reason, float(m.distance_remaining), int(m.policy_version))

    def _on_identity(self, robot: str, m: MachineIdentity) -> None:
        with self.lock:
            self.view.on_identity(robot, m.address, m.token_balance, m.stake)

    def _on_account(self, robot: str, m: MachineAccount) -> None:
        with self.lock:
            self.view.on_account(robot, m.address)

    def _on_policy(self, m: FleetPolicy) -> None:
        self.diag_policy.tick()
        with self.lock:
            self.view.on_policy(int(m.version), m.source, float(m.max_speed), bool(m.paused), [z.id for z in m.keep_out_zones])

    # ---------------------------------------------------------------- chain (worker thread)
    def _work(self) -> None:
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - reported in the table; the runner ends the process on a dead thread
            with self.lock:
                self.view.chain_error = f"status worker failed: {type(e).__name__}"
            raise

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            self._poll_once()
            self.stop_event.wait(self.params.period)

    def _poll_once(self) -> None:
        """Read the head and the new events once (the worker's period; once more for the summary)."""
        from depai_nodes.chain.errors import ChainError

        if self._market is None:
            self._market = self.client.contract("TaskMarket")
            self._data = self.client.contract("DataRegistry")
            self._decoders = {self._market.address.lower(): self._market.abi, self._data.address.lower(): self._data.abi}
            self._next_block = self.config.deploy_block
        try:
            g = self.client.genesis_hash(refresh=True)
            if g != self._genesis:
                if self._genesis is not None:
                    with self.lock:
                        self.view.reset_chain()
                    self.get_logger().warning(f"the chain changed (genesis {g[:10]}): counting from its start")
                    self._next_block = 0
                    with self.lock:
                        self.view.run_from_block = 0  # a new chain in this run: all of it is this run's
                self._genesis = g
            head = self.client.block_number()
            if self.view.run_from_block is None:  # this run starts here (a restored chain holds earlier runs)
                with self.lock:
                    self.view.run_from_block = head + 1
            if head < self._next_block - 1:  # went back (an older state restored): count again
                with self.lock:
                    self.view.reset_chain()
                self._next_block = self.config.deploy_block
            events = []
            if head >= self._next_block:
                for raw in self.client.get_logs([self._market.address, self._data.address], None, self._next_block, head):
                    abi = self._decoders.get(str(raw.get("address", "")).lower())
                    ev = abi.decode_log(raw) if abi is not None else None
                    if ev is not None and not ev.get("removed"):
                        events.append(ev)
                self._next_block = head + 1
            with self.lock:
                for ev in events:
                    self.view.on_event(ev)
                self.view.block, self.view.chain_error = head, ""
            self.chain_health.ok(head)
        except ChainError as e:
            self.chain_health.failed(f"{type(e).__name__}: {e}")
            with self.lock:
                self.view.chain_error = f"unreachable ({type(e).__name__})"

    # ---------------------------------------------------------------- output
    def _frame(self, summary: bool = False) -> str:
        with self.lock:
            return "\n".join(render(self.view, time.monotonic() - self.t0, summary=summary)) + "\n"

    def _print(self) -> None:
        try:
            sys.stdout.write(self._frame())
            sys.stdout.flush()
        except (OSError, ValueError):
            pass  # our output is gone: keep running

    def destroy_node(self) -> None:
        self.stop_event.set()
        if self.worker.is_alive():
            self.worker.join(5.0)
        if self.client is not None and not self.worker.is_alive():
            self._poll_once()  # the last payments of the run are in the summary
        try:
            sys.stdout.write(self._frame(summary=True))
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        super().destroy_node()


def main(args=None) -> int:
    return run_node(StatusNode, args)


if __name__ == "__main__":
    sys.exit(main())
