"""ROS wiring of the task agent: plan_path requests out; navigation_status and plan in.

One request is in flight at a time; a planner that does not answer within `request_timeout` counts
as a failed request (retried), never as a hang. The deadlines on what follows an accepted plan
(follow_timeout, stall_timeout, controller_timeout) are core.py's; this node feeds it the
controller's status, the paths published on `plan` (to tell its own goal from someone else's)
and a 10 Hz tick. Repeated warnings are throttled per cause with counts; a planner or controller
outage is logged once when it starts and once when it ends (common/logthrottle.py).
The agent holds no key and touches no chain: on a fleet with a task market only the wallet node signs.
"""

from __future__ import annotations

import math
import sys
import time

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from pydantic import Field, field_validator
from rclpy.node import Node

from depai.msg import NavigationStatus
from depai.srv import PlanPath
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
    frame_id: str = Field("map", min_length=1, description="frame of the waypoints")
    mode: str = Field("", description="planner mode per request: '' (planner default), 'optimal' or 'smooth'")
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

    @field_validator("waypoints")
    @classmethod
    def _triples(cls, flat: list[float]) -> list[float]:
        parse_waypoints(flat)
        return flat

    @field_validator("mode")
    @classmethod
    def _mode(cls, mode: str) -> str:
        if mode not in ("", "optimal", "smooth"):
            raise ValueError("mode must be '', 'optimal' or 'smooth'")
        return mode


class AgentNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("agent", **kwargs)
        self.params = declare_params(self, AgentParams, on_change=self._on_params)
        self.client = self.create_client(PlanPath, "plan_path")
        self.create_subscription(NavigationStatus, "navigation_status", self._on_status, RELIABLE_QOS)
        # What the controller follows (whoever asked). Volatile: matches a latched publisher too.
        self.create_subscription(Path, "plan", self._on_plan, RELIABLE_QOS)
        self._start = time.monotonic() + self.params.start_delay
        self._pending = None
        self._pending_since = 0.0
        self._throttle = CauseThrottle(self.params.log_period)
        self._planner_down = Outage("planner (plan_path)")
        self._controller_down = Outage("controller (navigation_status)")
        self._make_agent()
        self.create_timer(0.1, self._tick)

    def _make_agent(self) -> None:
        p = self.params
        self.agent = PatrolAgent(parse_waypoints(p.waypoints), loop=p.loop, retry_period=p.retry_period, max_attempts=p.max_attempts,
                                 idle_timeout=p.idle_timeout, follow_timeout=p.follow_timeout, stall_timeout=p.stall_timeout,
                                 controller_timeout=p.controller_timeout)
        self.get_logger().info(f"patrol of {len(self.agent.waypoints)} waypoint(s), loop={p.loop}")

    def _on_params(self, params: AgentParams) -> None:
        self.params = params
        self._pending = None
        self._throttle = CauseThrottle(params.log_period)
        self._make_agent()

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
        now = time.monotonic()
        if now < self._start:
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
        request.mode = self.params.mode
        self._pending = self.client.call_async(request)
        self._pending_since = now

    def _on_status(self, msg: NavigationStatus) -> None:
        state = _NAV_NAMES.get(msg.state, "UNKNOWN")
        self._log(self.agent.on_navigation(state, time.monotonic(), msg.reason, float(msg.distance_remaining)))

    def _on_plan(self, msg: Path) -> None:
        end = msg.poses[-1].pose.position if msg.poses else None
        self._log(self.agent.on_plan(None if end is None else (end.x, end.y), time.monotonic()))


def main(args=None) -> int:
    return run_node(AgentNode, args)


if __name__ == "__main__":
    sys.exit(main())
