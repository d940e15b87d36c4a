"""ROS wiring of the agent's market mode (the decisions are market.py's; the chain reads market_feed.py's).

The agent node builds a ``MarketDriver`` when ``mode`` is ``market``; its 10 Hz tick calls
``tick``. Everything here is non-blocking: one planner request (a dry run, the task's goal or the
parking pose), one wallet request and one arrival_proof question in flight at a time, each with
a deadline. The agent holds no key: the wallet accepts and completes; telemetry records the
arrival and proves it.
"""

from __future__ import annotations

import math
import queue
import time

from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry

from depai.msg import ArrivalRecord, FleetPolicy, MachineAccount, TxStatus
from depai.srv import AcceptTask, ArrivalProof, CompleteTask, PlanPath
from depai_nodes.common.logthrottle import Outage
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
from depai_nodes.common.service import ANSWERED, EXPIRED, PendingCall

from .core import Note, PatrolAgent
from .market import MarketAgent, MarketConfig, MarketPhase, MarketPolicy
from .market_feed import MarketFeed

_PLAN = {getattr(PlanPath.Response, n): n for n in dir(PlanPath.Response) if n.isupper() and isinstance(getattr(PlanPath.Response, n), int)}
_WALLET = {getattr(AcceptTask.Response, n): n for n in dir(AcceptTask.Response) if n.isupper() and isinstance(getattr(AcceptTask.Response, n), int)}
_PROOF = {getattr(ArrivalProof.Response, n): n for n in dir(ArrivalProof.Response) if n.isupper() and isinstance(getattr(ArrivalProof.Response, n), int)}


def _yaw(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def _base_units(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what} must be a decimal number of token base units, got {text!r}")
    return int(text)


_RESEND_S = 3.0  # an unanswered idempotent request (accept, complete, proof, dry run) is sent again after this, then 2x, ...


class MarketDriver:
    def __init__(self, node, params, plan_client) -> None:
        self.node = node
        self.p = p = params
        self.plan_client = plan_client
        park = tuple(p.park) if p.park else None
        self.cfg = MarketConfig(speed=p.speed, cost_per_m=_base_units(p.cost_per_m, "cost_per_m"),
                                cost_per_s=_base_units(p.cost_per_s, "cost_per_s"), overhead_s=p.overhead_s,
                                deadline_margin_s=p.deadline_margin, robot_radius=p.robot_radius, retry_period=p.retry_period,
                                max_retry_period=p.max_retry_period, proof_poll_s=p.proof_poll, record_timeout_s=p.record_timeout,
                                dry_run_ttl_s=p.dry_run_ttl, park=park)
        self.agent = MarketAgent(self.cfg, drive_factory=lambda wp: PatrolAgent(
            [wp], loop=False, retry_period=p.retry_period, max_attempts=p.max_attempts, idle_timeout=p.idle_timeout,
            follow_timeout=p.follow_timeout, stall_timeout=p.stall_timeout, controller_timeout=p.controller_timeout))
        self.inbox: queue.Queue = queue.Queue()
        self.accept_client = node.create_client(AcceptTask, "wallet/accept_task")
        self.complete_client = node.create_client(CompleteTask, "wallet/complete_task")
        self.proof_client = node.create_client(ArrivalProof, "telemetry/arrival_proof")
        self.arrival_pub = node.create_publisher(ArrivalRecord, "arrival", RELIABLE_QOS)
        node.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS)
        node.create_subscription(MachineAccount, "wallet/account", self._on_account, LATCHED_QOS)
        node.create_subscription(FleetPolicy, "/fleet/policy", self._on_policy, LATCHED_QOS)
        # Telemetry's anchoring results: a CONFIRMED batch may hold the arrival waiting for its proof.
        node.create_subscription(TxStatus, "anchor_status", self._on_anchor_status, RELIABLE_QOS)
        self.pose: tuple[float, float, float] | None = None
        # Service calls in flight (common/service.py: polled each tick; deadlines on the wall clock,
        # idempotent requests sent again while unanswered, a plan the robot would follow sent once).
        self.plan: PendingCall | None = None
        self.wallet: PendingCall | None = None
        self.proof: PendingCall | None = None
        self.synced = False
        self.block_time = 0.0
        self.block_seen = 0.0  # wall clock when block_time was read
        self.chain_down = Outage("chain (TaskMarket reads)")
        self.wallet_down = Outage("wallet (accept_task / complete_task)")
        self.telemetry_down = Outage("telemetry (arrival_proof)")
        from depai_nodes.common.diagnostics import ChainHealth

        self.chain_health = ChainHealth(error_after=15.0, stale_after=max(5.0, 5 * p.chain_poll), what="TaskMarket")
        self.feed = MarketFeed(p.chain_config or None, self.inbox.put, poll_s=p.chain_poll, event_mode=p.event_mode).start()
        node.get_logger().info("market mode: following TaskMarket (read-only, no key); accepting and completing through "
                               "the wallet, proofs from telemetry")

    # ------------------------------------------------------------------ inputs

    def _on_odom(self, msg: Odometry) -> None:
        q = msg.pose.pose
        vals = (q.position.x, q.position.y, _yaw(q.orientation))
        if all(math.isfinite(v) for v in vals):
            self.pose = vals
            if self.cfg.park is None and self.p.park_at_start:
                self.cfg.park = vals  # where it started: its own spot, no station

    def _on_account(self, msg: MachineAccount) -> None:
        if msg.address and msg.address != self.agent.machine:
            self.agent.machine = msg.address
            self.node.get_logger().info(f"machine account {msg.address} (from the wallet)")

    def _on_anchor_status(self, msg: TxStatus) -> None:
        if msg.status == TxStatus.CONFIRMED:
            self.agent.on_batch_anchored(self.node.clock.now())

    def _on_policy(self, msg: FleetPolicy) -> None:
        try:
            price = int(msg.min_task_price) if msg.min_task_price else 0
        except ValueError:
            price = 2**256  # unreadable: take nothing (fail closed)
        zones = tuple((z.id, tuple((p.x, p.y) for p in z.polygon.points)) for z in msg.keep_out_zones)
        self.node.log(self.agent.on_policy(MarketPolicy(paused=msg.paused, min_task_price=price, zones=zones, version=msg.version)))

    def chain_now(self) -> float | None:
        if not self.block_time:
            return None
        # between reads: the chain's clock runs with ours (anvil's next block is no earlier)
        return self.block_time + max(0.0, time.time() - self.block_seen)

    def _drain(self, now: float) -> None:
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return
            kind = item[0]
            if kind == "tasks":
                for info in item[1]:
                    self.node.log(self.agent.on_task(info))
                self._time(item[2])
            elif kind == "task":
                self.node.log(self.agent.on_task(item[1]))
            elif kind == "time":
                self._time(item[1])
                self.chain_health.ok()
            elif kind == "synced":
                self.chain_health.ok(item[1])
                self.node.log(self.chain_down.recovered())
                if not self.synced:
                    self.synced = True
                    self.node.get_logger().info(f"TaskMarket read up to block {item[1]}: {len(self.agent.tasks)} task(s), "
                                                f"{sum(t.status == 'Open' for t in self.agent.tasks.values())} open")
            elif kind == "chain_error":
                self.chain_health.failed(item[1])
                self.node.log(self.chain_down.failed(item[1]), warn=True)
            elif kind == "stream_error":
                self.node.log(Note(f"TaskMarket event stream: {item[1]}", cause="stream", warn=True))

    def _time(self, block_time: int) -> None:
        if block_time != self.block_time:
            self.block_time, self.block_seen = float(block_time), time.time()

    # ------------------------------------------------------------------ /diagnostics

    def add_diagnostics(self, diag) -> None:
        """The agent node's /diagnostics in market mode: `chain` (TaskMarket reads: WARN retrying
        or none for 5 poll periods, ERROR unreachable for 15 s: no task is taken), `wallet` (WARN:
        no machine account yet or accept/complete failing: retried), `telemetry` (WARN:
        arrival_proof failing) and `task` (phase, the task held, paid so far; WARN: the fleet is
        paused or no policy yet: nothing is taken)."""
        from depai_nodes.common.diagnostics import OK, WARN

        def chain():
            level, message, values = self.chain_health.check()
            values.update(synced=self.agent.synced, chain_time=int(self.block_time))
            if level == OK:
                message = f"TaskMarket read (block time {int(self.block_time)}; synced at block {values['block']})"
            return level, message, values

        def wallet():
            values = {"machine": self.agent.machine, "failures": self.wallet_down.failures}
            if not self.agent.machine:
                return WARN, "no machine account on wallet/account yet: no task is accepted", values
            if self.wallet_down.down:
                return WARN, f"wallet not answering ({self.wallet_down.failures} failure(s)): retrying", values
            return OK, f"machine {self.agent.machine}", values

        def telemetry():
            values = {"failures": self.telemetry_down.failures}
            if self.telemetry_down.down:
                return WARN, f"arrival_proof not answering ({self.telemetry_down.failures} failure(s)): retrying", values
            return OK, ("arrival_proof available" if self.proof_client.service_is_ready()
                        else "arrival_proof not available (asked only after an arrival)"), values

        def task():
            a = self.agent
            cur = a.current
            values = {"phase": a.phase.value, "task": "" if cur is None else cur.task.task_id, "tasks_known": len(a.tasks),
                      "accepts": a.accepts, "paid": len(a.paid), "gave_up": len(a.gave_up), "lost_races": a.lost_races}
            if a.policy is None:
                return WARN, "no fleet policy yet: no task is taken", values
            if a.policy.paused and cur is None:
                return WARN, f"fleet paused (policy v{a.policy.version}): no task is taken", values
            held = f": task {cur.task.task_id}" if cur is not None else ""
            return OK, f"{a.phase.value}{held} ({len(a.paid)} paid)", values

        diag.check("chain", chain)
        diag.check("wallet", wallet)
        diag.check("telemetry", telemetry)
        diag.check("task", task)

    # ------------------------------------------------------------------ the tick

    def tick(self, now: float) -> None:
        self._drain(now)
        if self.synced and self.agent.machine and not self.agent.synced:
            self.node.log(self.agent.on_synced(now))
        self._poll_plan(now)
        self._poll_wallet(now)
        self._poll_proof(now)
        self.node.log(self.agent.on_tick(now, self.chain_now()))
        if not self.agent.synced:
            return
        self._maybe_plan(now)
        self._maybe_accept(now)
        self._maybe_record(now)
        self._maybe_prove(now)
        self._maybe_complete(now)

    # planner ------------------------------------------------------------

    def _pose_request(self, x: float, y: float, yaw: float, dry: bool) -> PlanPath.Request:
        r = PlanPath.Request()
        r.goal = PoseStamped()
        r.goal.header.frame_id = self.p.frame_id
        r.goal.pose.position.x, r.goal.pose.position.y = float(x), float(y)
        r.goal.pose.orientation.z, r.goal.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        r.mode = self.p.plan_mode
        r.dry_run = dry
        return r

    def _maybe_plan(self, now: float) -> None:
        if self.plan is not None or not self.plan_client.service_is_ready():
            return
        wp = self.agent.goal_to_request(now)
        if wp is not None:
            kind = "goal" if self.agent.current is not None else "park"
            self.plan = PendingCall(self.plan_client, self._pose_request(wp.x, wp.y, wp.yaw, False), self.p.request_timeout,
                                    None, kind=kind)
            return
        t = self.agent.dry_run_wanted(now)
        if t is not None:
            self.plan = PendingCall(self.plan_client, self._pose_request(t.x, t.y, t.yaw, True), self.p.request_timeout,
                                    _RESEND_S, kind="dry", data=t.task_id)

    def _poll_plan(self, now: float) -> None:
        c = self.plan
        if c is None:
            return
        state = c.poll()
        if state == EXPIRED:
            self.plan = None
            self._plan_failed(c, now, f"no answer within {c.timeout_s:g} s")
        if state != ANSWERED:
            return
        self.plan = None
        r = c.result
        name = _PLAN.get(r.result, f"UNKNOWN({r.result})")
        tol = self.p.goal_tolerance
        if c.kind == "dry":
            self.node.log(self.agent.on_dry_run(c.data, name, r.length, r.message, now))
        elif c.kind == "goal":
            self.node.log(self.agent.on_plan_result(name, now, r.length, tol, r.message))
        else:
            self.node.log(self.agent.park_plan_result(name, now, r.length, tol, r.message))

    def _plan_failed(self, c: PendingCall, now: float, why: str) -> None:
        if c.kind == "dry":
            self.agent.on_dry_run_failed(c.data, now)
        elif c.kind == "goal" and self.agent.current is not None:
            self.node.log(self.agent.current.drive.on_request_failed(now, why))
        elif c.kind == "park" and self.agent.park_drive is not None:
            self.agent.park_drive.on_request_failed(now, why)

    # wallet ------------------------------------------------------------

    def _maybe_accept(self, now: float) -> None:
        if self.wallet is not None or not self.agent.machine:
            return
        chain_now = self.chain_now()
        if chain_now is None:
            return
        found = self.agent.best(chain_now, now)
        if found is None:
            return
        task, s = found
        self.node.log(self.agent.take(task, s, now))
        self.wallet = self._wallet_call(self.accept_client, AcceptTask.Request(task_id=str(task.task_id)), "accept", now)

    def _maybe_complete(self, now: float) -> None:
        if self.wallet is not None:
            return
        found = self.agent.complete_wanted(now)
        if found is None:
            return
        task, proof = found
        req = CompleteTask.Request(task_id=str(task.task_id), batch_id=proof["batch_id"], x_mm=int(proof["x_mm"]),
                                   y_mm=int(proof["y_mm"]), yaw_mrad=int(proof["yaw_mrad"]), time=int(proof["time"]),
                                   proof=list(proof["proof"]))
        self.wallet = self._wallet_call(self.complete_client, req, "complete", now)

    def _wallet_call(self, client, request, kind: str, now: float) -> PendingCall | None:
        if not client.service_is_ready():
            self._wallet_answer(kind, "WALLET_UNAVAILABLE", "WalletUnavailable", f"no wallet serves {client.srv_name}", "0", False, now)
            return None
        return PendingCall(client, request, self.p.wallet_timeout, _RESEND_S, kind=kind)  # idempotent by task id

    def _poll_wallet(self, now: float) -> None:
        c = self.wallet
        if c is None:
            return
        state = c.poll()
        if state == EXPIRED:
            self.wallet = None
            self._wallet_answer(c.kind, "TIMEOUT", "WalletTimeout",
                                f"no answer within {c.timeout_s:g} s (asked {c.sends} time(s); asking again is safe)", "0", False, now)
        if state != ANSWERED:
            return
        self.wallet = None
        r = c.result
        self._wallet_answer(c.kind, _WALLET.get(r.result, f"UNKNOWN({r.result})"), r.error, r.reason,
                            getattr(r, "reward", "0"), r.already_done, now, getattr(r, "tx_hash", ""))

    def _wallet_answer(self, kind, result, error, reason, reward, already_done, now, tx_hash="") -> None:
        if result == "WALLET_UNAVAILABLE":
            self.node.log(self.wallet_down.failed(reason), warn=True)
        else:
            self.node.log(self.wallet_down.recovered())
        if kind == "accept":
            line = self.agent.on_accept(result, error, reason, already_done, now)
        else:
            line = self.agent.on_complete(result, error, reason, reward, already_done, now)
        if tx_hash and result == "SUCCESS":
            line = Note(f"{line} (tx {tx_hash})", cause=getattr(line, "cause", line), warn=getattr(line, "warn", False))
        self.node.log(line)

    # telemetry ---------------------------------------------------------

    def _maybe_record(self, now: float) -> None:
        if not self.agent.machine:
            return
        task = self.agent.record_wanted(now, self.pose[:2] if self.pose is not None else None)
        if task is None or isinstance(task, str):
            self.node.log(task)
            return
        msg = ArrivalRecord(task_id=task.task_id, machine=self.agent.machine, x=self.pose[0], y=self.pose[1], yaw=self.pose[2])
        # on the chain's clock scale (a governance round's time warp moves it ahead of ours)
        when = task.arrival_time(self.chain_now(), time.time())
        msg.stamp = TimeMsg(sec=int(when), nanosec=int((when % 1) * 1e9))
        self.arrival_pub.publish(msg)
        self.agent.on_recorded(now)
        self.node.get_logger().info(f"arrival record of task {task.task_id} published at ({self.pose[0]:.2f}, {self.pose[1]:.2f})")

    def _maybe_prove(self, now: float) -> None:
        if self.proof is not None:
            return
        if not self.proof_client.service_is_ready():
            if self.agent.phase == MarketPhase.PROVING:
                self.node.log(self.telemetry_down.failed("the telemetry/arrival_proof service is not available"), warn=True)
            return
        task = self.agent.proof_wanted(now)
        if task is not None:
            self.proof = PendingCall(self.proof_client, ArrivalProof.Request(task_id=task.task_id), self.p.request_timeout,
                                     _RESEND_S, kind="proof")  # a read

    def _poll_proof(self, now: float) -> None:
        c = self.proof
        if c is None:
            return
        state = c.poll()
        if state == EXPIRED:
            self.proof = None
            self.node.log(self.telemetry_down.failed(f"no answer within {c.timeout_s:g} s"), warn=True)
        if state != ANSWERED:
            return
        self.proof = None
        r = c.result
        self.node.log(self.telemetry_down.recovered())
        answer = {"batch_id": r.batch_id, "root": r.root, "x_mm": r.x_mm, "y_mm": r.y_mm, "yaw_mrad": r.yaw_mrad, "time": r.time,
                  "proof": list(r.proof), "reason": r.reason}
        self.node.log(self.agent.on_proof(_PROOF.get(r.result, "UNKNOWN"), answer, now))

    # ------------------------------------------------------------------ what the controller says

    def on_status(self, state: str, now: float, reason: str, remaining: float) -> None:
        self.node.log(self.agent.on_navigation(state, now, reason, remaining))

    def on_plan(self, goal, now: float) -> None:
        self.node.log(self.agent.on_plan(goal, now))

    def stop(self) -> None:
        self.feed.stop()
