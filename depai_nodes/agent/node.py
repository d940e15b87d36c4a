"""ROS wiring of the task agent: plan_path requests out; navigation_status and plan in.

One request is in flight at a time; a planner that does not answer within `request_timeout` counts
as a failed request (retried), never as a hang. The deadlines on what follows an accepted plan
(follow_timeout, stall_timeout, controller_timeout) are core.py's; this node feeds it the
controller's status, the paths published on `plan` (to tell its own goal from someone else's)
and a 10 Hz tick. Repeated warnings are throttled per cause with counts; a planner or controller
outage is logged once when it starts and once when it ends (common/logthrottle.py).
The agent holds no key: with `mode: market` (market_node.py) it reads TaskMarket with a read-only
client and has the wallet accept and complete tasks; only the wallet node signs.
"""

from __future__ import annotations

import math
import sys

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from pydantic import Field, field_validator
from rclpy.node import Node

from depai.msg import NavigationStatus
from depai.srv import PlanPath
from depai_nodes.common.clock import NodeTime
from depai_nodes.common.logthrottle import CauseThrottle, Outage, with_count
from depai_nodes.common.params import READ_ONLY, ParamsModel, declare_params
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.common.runner import run_node

from .core import AgentPhase, Note, PatrolAgent, parse_waypoints

_RESULT_NAMES = {getattr(PlanPath.Response, n): n for n in dir(PlanPath.Response) if n.isupper() and isinstance(getattr(PlanPath.Response, n), int)}
STARTUP_GRACE_S = 10.0  # how long a controller that was never heard may take to appear before it is logged
_NAV_NAMES = {getattr(NavigationStatus, n): n for n in ("IDLE", "FOLLOWING", "ARRIVED", "STOPPED")}


class AgentParams(ParamsModel):
    waypoints: list[float] = Field(default_factory=list, description="x, y, yaw triples in the map frame (m, m, rad)")
    loop: bool = Field(True, description="start over after the last waypoint")
    mode: str = Field("patrol", description="'patrol' (visit the waypoints) or 'market' (take paid TaskMarket tasks)",
                      json_schema_extra=READ_ONLY)
    frame_id: str = Field("map", min_length=1, description="frame of the waypoints")
    plan_mode: str = Field("", description="planner mode per request: '' (planner default), 'optimal' or 'smooth'")
    start_delay: float = Field(2.0, ge=0.0, le=600.0, description="s to wait before the first request (let the stack come up)", json_schema_extra=READ_ONLY)
    retry_period: float = Field(1.0, gt=0.0, le=600.0, description="s between retries of a refused or failed request")
    max_attempts: int = Field(20, ge=1, le=100000, description="transient refusals of one waypoint before it is skipped")
    request_timeout: float = Field(5.0, gt=0.0, le=600.0, description="s to wait for the planner's answer")
    goal_tolerance: float = Field(0.15, gt=0.0, le=5.0, description="m; a plan shorter than this means already there")
    follow_timeout: float = Field(5.0, gt=0.0, le=600.0, description="s; an accepted plan the controller does not follow by then is asked for again")
    stall_timeout: float = Field(20.0, gt=0.0, le=3600.0, description="s without progress along the path before the plan is asked for again")
    idle_timeout: float = Field(5.0, gt=0.0, le=600.0, description="s the controller may sit IDLE after following before the plan is asked for again")
    controller_timeout: float = Field(2.0, gt=0.0, le=600.0, description="s without navigation_status: the controller is silent; nothing is asked until it is back")
    log_period: float = Field(10.0, ge=0.0, le=3600.0, description="s; a repeated warning of one cause is logged at most this often, with a count")
    # ---- market mode
    chain_config: str = Field("", description="chain config to read TaskMarket from, no key ('' = $DEPAI_CHAIN_CONFIG or .depai/chain.local.json)",
                              json_schema_extra=READ_ONLY)
    event_mode: str = Field("auto", description="TaskMarket events: 'auto' (WebSocket, polling fallback) or 'poll'", json_schema_extra=READ_ONLY)
    chain_poll: float = Field(1.0, gt=0.0, le=60.0, description="s between chain reads (the chain's time, tasks events named)", json_schema_extra=READ_ONLY)
    speed: float = Field(0.5, gt=0.0, le=20.0, description="m/s expected on average: a trip's time")
    cost_per_m: str = Field("0", description="token base units a metre of driving costs (decimal)")
    cost_per_s: str = Field("0", description="token base units a second of a trip costs (decimal)")
    overhead_s: float = Field(20.0, ge=0.0, le=3600.0, description="s a task needs beyond driving (accept, anchoring the arrival, complete)")
    deadline_margin: float = Field(5.0, ge=0.0, le=3600.0, description="s to spare before a task's deadline")
    robot_radius: float = Field(0.3, ge=0.0, le=5.0, description="m: a keep-out zone this close to a goal counts as over it")
    max_retry_period: float = Field(30.0, gt=0.0, le=3600.0, description="s: ceiling of the wallet retries' backoff")
    proof_poll: float = Field(0.5, gt=0.0, le=60.0, description="s between telemetry/arrival_proof questions")
    record_timeout: float = Field(10.0, gt=0.0, le=600.0, description="s an arrival record may stay unknown to telemetry before it is published again")
    dry_run_ttl: float = Field(30.0, gt=0.0, le=3600.0, description="s a dry-run trip cost is trusted while idle")
    wallet_timeout: float = Field(60.0, gt=0.0, le=3600.0, description="s to wait for the wallet's answer (accept, complete)")
    park: list[float] = Field(default_factory=list, description="x, y, yaw where the robot waits between tasks ([]: where it started, see park_at_start)")
    park_at_start: bool = Field(True, description="with no park pose: wait where the robot first was (off the stations)")

    @field_validator("waypoints")
    @classmethod
    def _triples(cls, flat: list[float]) -> list[float]:
        parse_waypoints(flat)
        return flat

    @field_validator("plan_mode")
    @classmethod
    def _plan_mode(cls, mode: str) -> str:
        if mode not in ("", "optimal", "smooth"):
            raise ValueError("plan_mode must be '', 'optimal' or 'smooth'")
        return mode

    @field_validator("mode")
    @classmethod
    def _mode(cls, mode: str) -> str:
        if mode not in ("patrol", "market"):
            raise ValueError("mode must be 'patrol' or 'market'")
        return mode

    @field_validator("event_mode")
    @classmethod
    def _event_mode(cls, mode: str) -> str:
        if mode not in ("auto", "poll"):
            raise ValueError("event_mode must be 'auto' or 'poll'")
        return mode

    @field_validator("cost_per_m", "cost_per_s")
    @classmethod
    def _units(cls, text: str) -> str:
        if not text.isdigit() or len(text) > 78:
            raise ValueError("must be a decimal number of token base units")
        return text

    @field_validator("park")
    @classmethod
    def _park(cls, flat: list[float]) -> list[float]:
        if flat and (len(flat) != 3 or not all(math.isfinite(v) for v in flat)):
            raise ValueError("park must be [] or one finite x, y, yaw triple")
        return flat


class AgentNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("agent", **kwargs)
        self.params = declare_params(self, AgentParams, on_change=self._on_params)
        self.client = self.create_client(PlanPath, "plan_path")
        self.create_subscription(NavigationStatus, "navigation_status", self._on_status, RELIABLE_QOS)
        # What the controller follows (whoever asked). Volatile: matches a latched publisher too.
        self.create_subscription(Path, "plan", self._on_plan, RELIABLE_QOS)
        # Deadlines, delays and retries on the node's clock (sim time under use_sim_time), never backwards.
        self.clock = NodeTime.of(self, on_jump=lambda back: self.get_logger().warning(
            f"the clock jumped back {back:.1f} s (a restarted simulator?): deadlines continue from where they were"))
        self._start: float | None = None  # start_delay counts from the first tick: /clock's time, not 0 before it
        self._pending = None
        self._pending_since = 0.0
        self._throttle = CauseThrottle(self.params.log_period)
        self._planner_down = Outage("planner (plan_path)")
        self._controller_down = Outage("controller (navigation_status)")
        self.market = None
        if self.params.mode == "market":
            from .market_node import MarketDriver

            self.agent = None
            self.market = MarketDriver(self, self.params, self.client)
        else:
            self._make_agent()
        self.create_timer(0.1, self._tick)
        self._diagnostics()

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py): input navigation_status (WARN: none yet or none
        for controller_timeout: no plan is asked for), `planner` (WARN: plan_path unavailable or
        not answering), `task` (the patrol: phase and waypoint; WARN: waypoints skipped, nothing
        left to do; market mode: market_node.py's entries)."""
        from depai_nodes.common.diagnostics import OK, WARN, NodeDiagnostics

        self.diag = NodeDiagnostics(self)
        self.diag_nav = self.diag.diag.topic("navigation_status", stale_after=self.params.controller_timeout)

        def planner():
            values = {"service": self.client.srv_name, "ready": self.client.service_is_ready(), "failures": self._planner_down.failures}
            if self._planner_down.down:
                return WARN, f"plan_path failing ({self._planner_down.failures} failure(s) in a row): retrying", values
            if not values["ready"]:
                return WARN, "plan_path not available", values
            return OK, "plan_path available", values

        self.diag.diag.check("planner", planner)
        if self.market is not None:
            self.market.add_diagnostics(self.diag.diag)
            return

        def task():
            a = self.agent
            values = {"phase": a.phase.value, "waypoints": len(a.waypoints), "index": a.index, "visited": a.visited,
                      "skipped": a.skipped, "rerequests": a.rerequests}
            if not a.waypoints:
                return WARN, "no waypoints: nothing to do", values
            if a.phase == AgentPhase.DONE:
                return OK, f"patrol done: {a.visited} visited, {a.skipped} skipped", values
            wp = a.current
            where = f" to waypoint {a.index} ({wp.x:.2f}, {wp.y:.2f})" if wp is not None else ""
            if a.phase == AgentPhase.WAITING and a.attempts > 0:
                return WARN, f"refused{where}: retrying (attempt {a.attempts} of {a.max_attempts})", values
            return OK, f"{a.phase.value}{where}", values

        self.diag.diag.check("task", task)

    def _make_agent(self) -> None:
        p = self.params
        self.agent = PatrolAgent(parse_waypoints(p.waypoints), loop=p.loop, retry_period=p.retry_period, max_attempts=p.max_attempts,
                                 idle_timeout=p.idle_timeout, follow_timeout=p.follow_timeout, stall_timeout=p.stall_timeout,
                                 controller_timeout=p.controller_timeout)
        self.get_logger().info(f"patrol of {len(self.agent.waypoints)} waypoint(s), loop={p.loop}")

    def _on_params(self, params: AgentParams) -> None:
        self.params = params
        self._throttle = CauseThrottle(params.log_period)
        if self.market is not None:
            return  # market mode's parameters are read at start
        self._pending = None
        self._make_agent()

    def log(self, line: str | None, warn: bool = False) -> None:
        self._log(line, warn)

    def _log(self, line: str | None, warn: bool = False) -> None:
        # Two call sites on purpose: rclpy refuses one call site logging at two severities.
        if not line:
            return
        warn = warn or (isinstance(line, Note) and line.warn)
        if warn:
            log_now, held_back = self._throttle.check(line.cause if isinstance(line, Note) else line)
            if log_now:
                self.get_logger().warning(with_count(line, held_back))
        else:
            self.get_logger().info(line)

    def _tick(self) -> None:
        now = self.clock.now()
        if self._start is None:
            self._start = now + self.params.start_delay
        if now < self._start:
            return
        if self.market is not None:
            self.market.tick(now)
            return
        if self._pending is not None:
            if self._pending.done():
                future, self._pending = self._pending, None
                response = future.result()
                if response is None:
                    self._log(self._planner_down.failed("no response"), warn=True)
                    self._log(self.agent.on_request_failed(now, "no response"), warn=True)
                    return
                self._log(self._planner_down.recovered())
                name = _RESULT_NAMES.get(response.result, f"UNKNOWN({response.result})")
                line = self.agent.on_plan_result(name, now, response.length, self.params.goal_tolerance, response.message)
                if name != "SUCCESS" and response.message:
                    line = Note(f"{line} ({response.message})", cause=getattr(line, "cause", line), warn=True)
                self._log(line, warn=name != "SUCCESS")
            elif now - self._pending_since > self.params.request_timeout:
                self._pending.cancel()
                self._pending = None
                why = f"no answer within {self.params.request_timeout:g} s"
                self._log(self._planner_down.failed(why), warn=True)
                self._log(self.agent.on_request_failed(now, why), warn=True)
            return
        self._log(self.agent.on_tick(now))
        # Waits with a logged start and end: for the controller, then for the planner.
        if not self.agent.controller_alive(now):
            # A controller still starting up (DDS discovery, map loading) gets STARTUP_GRACE_S first.
            silent = self.agent.controller_silent_for(now)
            patience = STARTUP_GRACE_S if math.isinf(silent) else 0.0
            if not self._controller_down.down and now - self._start > max(patience, self.params.controller_timeout):
                self._log(self._controller_down.failed(
                    ("never heard" if math.isinf(silent) else f"not heard for {silent:.1f} s") + "; no plan is asked for until it is"), warn=True)
            return
        self._log(self._controller_down.recovered())
        if not self.client.service_is_ready():
            if not self._planner_down.down and self.agent.phase == AgentPhase.WAITING and now - self._start > self.params.request_timeout:
                self._log(self._planner_down.failed("the plan_path service is not available"), warn=True)
            return
        waypoint = self.agent.goal_to_request(now)
        if waypoint is None:
            return
        request = PlanPath.Request()
        request.goal = PoseStamped()
        request.goal.header.frame_id = self.params.frame_id
        request.goal.header.stamp = self.get_clock().now().to_msg()
        request.goal.pose.position.x = waypoint.x
        request.goal.pose.position.y = waypoint.y
        request.goal.pose.orientation.z = math.sin(waypoint.yaw / 2)
        request.goal.pose.orientation.w = math.cos(waypoint.yaw / 2)
        request.mode = self.params.plan_mode
        self._pending = self.client.call_async(request)
        self._pending_since = now

    def _on_status(self, msg: NavigationStatus) -> None:
        self.diag_nav.tick()
        state = _NAV_NAMES.get(msg.state, "UNKNOWN")
        if self.market is not None:
            self.market.on_status(state, self.clock.now(), msg.reason, float(msg.distance_remaining))
            return
        self._log(self.agent.on_navigation(state, self.clock.now(), msg.reason, float(msg.distance_remaining)))

    def _on_plan(self, msg: Path) -> None:
        end = msg.poses[-1].pose.position if msg.poses else None
        goal = None if end is None else (end.x, end.y)
        if self.market is not None:
            self.market.on_plan(goal, self.clock.now())
            return
        self._log(self.agent.on_plan(goal, self.clock.now()))

    def destroy_node(self) -> None:
        if self.market is not None:
            self.market.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(AgentNode, args)


if __name__ == "__main__":
    sys.exit(main())
