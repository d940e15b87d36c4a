"""ROS wiring of the requester: post delivery tasks through the requester's own wallet.

Runs in namespace `requester` next to that namespace's wallet (`requester/wallet`, its own demo
key or keystore, never a robot's). A worker thread (the executor never blocks on the wallet)
reads the chain time through a read-only client (this node holds no key), asks the core for the
next task and calls `wallet/post_task` (depai/PostTask); the wallet validates it, checks its
policy (allow-listed contract and function, budget, rate limit) and signs. Keep-out zones of
`/fleet/policy` keep tasks off the stations they cover. Every post, refusal and retry is logged.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

from rclpy.node import Node

from depai.msg import FleetPolicy
from depai_nodes.common.params import ParameterError, declare_params
from depai_nodes.common.qos import LATCHED_QOS
from depai_nodes.common.runner import run_node

from depai_nodes.chain.units import fleet as fleet_units
from depai_nodes.common.clock import NodeTime

from .core import PostRequest, Requester, RequesterParams


def load_station_list(params: RequesterParams):
    """The stations to post to, validated and checked free in the world (ParameterError if not)."""
    from depai_nodes.common.stations import StationsError, check_free, load_stations, stations_path_for

    try:
        path = Path(params.stations_file) if params.stations_file else stations_path_for(params.world)
        loaded = load_stations(path)
        check_free(loaded, params.world, robot_radius=params.robot_radius)
        chosen = [loaded.by_id(i) for i in params.stations] if params.stations else list(loaded.stations)
    except (StationsError, ValueError) as e:
        raise ParameterError("stations_file" if params.stations_file else "world", str(e)) from None
    return path, chosen


class RequesterNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("requester", **kwargs)
        self.params = declare_params(self, RequesterParams, on_change=self._on_params)
        self.stations_path, self.stations = load_station_list(self.params)
        from depai_nodes.chain.wiring import load_node_chain

        self.config, self.client = load_node_chain(self.params, require=("TaskMarket",))  # read-only: no key here
        from depai_nodes.wallet.proxy import WalletProxy

        self.wallet = WalletProxy(self)  # its own wallet's wallet/post_task, resent while unanswered (idempotent by request id)
        self.create_subscription(FleetPolicy, "/fleet/policy", self._on_policy, LATCHED_QOS)
        self.inbox: queue.Queue = queue.Queue()
        # Its period and retry backoff on the node's clock (sim time under use_sim_time), never backwards.
        self.clock = NodeTime.of(self, on_jump=lambda back: self.inbox.put(
            ("warn", f"the clock jumped back {back:.1f} s (a restarted simulator?): the posting schedule continues")))
        self.zones: dict | None = None
        self.stop_event = threading.Event()
        self._diagnostics()  # before the worker: it feeds the chain entry
        self.worker = threading.Thread(target=self._work, name="requester", daemon=True)
        self.worker.start()
        from rclpy.clock import Clock, ClockType

        self.timer = self.create_timer(0.1, self._drain, clock=Clock(clock_type=ClockType.STEADY_TIME))  # logs flow without sim time
        p = self.params
        self.get_logger().info(
            f"requester on {self.config.name} (chain {self.config.chain_id}): {len(self.stations)} station(s) from "
            f"{self.stations_path} ({', '.join(s.id for s in self.stations)}); a task every {p.period:g} s, reward "
            f"{fleet_units(int(p.reward))}, budget {fleet_units(int(p.budget))}"
            + (f", at most {p.max_tasks}" if p.max_tasks else "") + "; its wallet signs, this node holds no key")

    def _on_params(self, params: RequesterParams) -> None:
        self.params = params
        if getattr(self, "core", None) is not None:
            self.core.params = params

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py): `chain` (the worker's reads: WARN retrying, ERROR
        unreachable for 3 retry periods, at least 15 s: nothing is posted; OK with the block) and
        `posting` (posted, escrowed, the last answer; WARN: the wallet's last answer was retryable
        (unavailable, timeout, chain down) or every station lies in a keep-out zone; OK when done)."""
        from depai_nodes.common.diagnostics import OK, WARN, ChainHealth, NodeDiagnostics

        from depai_nodes.chain.intents import RETRYABLE, Result

        self.diag = NodeDiagnostics(self)
        self.chain_health = ChainHealth(error_after=max(15.0, 3 * self.params.retry_period))
        self.chain_health.extra["rpc_url"] = self.config.rpc_url
        self._last_post: tuple | None = None  # the wallet's last answer: (result, task_id, already_done, error, reason)

        def chain():
            core = getattr(self, "core", None)
            if core is not None and core.done_reason:
                return OK, "done posting: the chain is not read any more", {"block": self.chain_health.block or ""}
            return self.chain_health.check()

        def posting():
            core = getattr(self, "core", None)
            if core is None:
                return OK, "not started (start_delay, or waiting for the chain)", {"posted": 0}
            values = {"posted": core.posted, "escrowed": core.spent, "budget": self.params.budget, "next_seq": core.seq}
            if core.done_reason:
                return OK, f"done posting: {core.done_reason}", values
            last = self._last_post
            if last is not None:
                values["last_result"] = Result.NAMES.get(last[0], str(last[0]))
            if last is not None and last[0] in RETRYABLE:
                return WARN, f"post not done: {values['last_result']} {last[3]}: {last[4]}; asking again"[:400], values
            if all(core.blocked(s) for s in self.stations):
                return WARN, "every station lies in a keep-out zone: nothing is posted", values
            return OK, f"{core.posted} task(s) posted, {core.spent} escrowed", values

        self.diag.diag.check("chain", chain)
        self.diag.diag.check("posting", posting)

    def _on_policy(self, msg: FleetPolicy) -> None:
        self.zones = {z.id: [(p.x, p.y) for p in z.polygon.points] for z in msg.keep_out_zones}

    def _work(self) -> None:
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - logged; the runner ends the process (exit 1) on a dead thread
            self.inbox.put(("error", f"requester worker failed: {type(e).__name__}: {e}"))
            raise

    def _chain(self) -> tuple[str, int]:
        """(genesis hash, chain time) through the read-only client."""
        self.client.verify_chain()
        genesis = self.client.genesis_hash()
        block = self.client.get_block("latest")
        self._head = int(block["number"], 16) if isinstance(block.get("number"), str) else block.get("number")
        stamp = block["timestamp"]
        chain_time = int(stamp, 16) if isinstance(stamp, str) else int(stamp)
        return genesis, max(chain_time, int(time.time()))

    def _loop(self) -> None:
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.common.logthrottle import Outage

        from depai_nodes.chain.intents import RETRYABLE
        from depai_nodes.common.logthrottle import CauseThrottle, with_count

        outage = Outage(f"requester: chain ({self.config.rpc_url})")
        throttle = CauseThrottle(60.0)
        if self.stop_event.wait(self.params.start_delay):
            return
        self.core: Requester | None = None
        zones_seen = None
        while not self.stop_event.is_set():
            try:
                genesis, chain_time = self._chain()
                self.chain_health.ok(self._head)
                line = outage.recovered()
                if line:
                    self.inbox.put(("info", line))
            except ChainError as e:
                self.chain_health.failed(f"{type(e).__name__}: {e}")
                line = outage.failed(f"{type(e).__name__}: {e}")
                if line:
                    self.inbox.put(("warn", line))
                self.stop_event.wait(self.params.retry_period)
                continue
            if self.core is None or self.core.genesis != genesis:
                if self.core is not None:
                    self.inbox.put(("warn", f"the chain changed (genesis {genesis[:10]}): a new sequence of tasks"))
                self.core = Requester(self.params, self.stations, genesis)
            core = self.core
            if self.zones is not None and self.zones is not zones_seen:
                zones_seen = self.zones
                for line in core.set_zones(zones_seen):
                    self.inbox.put(("info", line))
            request = core.next_request(self.clock.now(), chain_time)
            if request is None:
                if core.done_reason:
                    self.inbox.put(("info", f"done posting: {core.done_reason}"))
                    self.stop_event.wait()
                    return
                self.stop_event.wait(max(0.1, min(1.0, core.next_at - self.clock.now())))
                continue
            answer = self._ask(request)
            self._last_post = answer
            line = core.on_result(request, self.clock.now(), *answer)
            if answer[0] in RETRYABLE:  # an outage: one line per cause and minute, with a count
                log_now, held_back = throttle.check(answer[3] or answer[0])
                if log_now:
                    self.inbox.put(("warn", with_count(line, held_back)))
            else:
                self.inbox.put(("info" if answer[0] == 0 else "warn", line))

    def _ask(self, r: PostRequest) -> tuple[int, str, bool, str, str]:
        """(result, task_id, already_done, error, reason) of wallet/post_task."""
        a = self.wallet.post_task(r, timeout_s=self.params.wallet_timeout)
        return a.result, a.task_id, a.already_done, a.error, a.reason

    def _drain(self) -> None:
        while True:
            try:
                level, text = self.inbox.get_nowait()
            except queue.Empty:
                return
            # One call site per severity: rclpy refuses (ValueError, the node dies) a call site
            # that logs at two severities, e.g. an info line and then a refused post's warning.
            log = self.get_logger()
            if level == "error":
                log.error(text)
            elif level == "warn":
                log.warning(text)
            else:
                log.info(text)

    def destroy_node(self) -> None:
        self.stop_event.set()
        self.worker.join(5.0)
        super().destroy_node()


def main(args=None) -> int:
    return run_node(RequesterNode, args)


if __name__ == "__main__":
    sys.exit(main())
