"""ROS wiring of the task agent: plan_path requests out, navigation_status in.

One request is in flight at a time; a planner that does not answer within `request_timeout` counts
as a failed request (retried), never as a hang. The agent holds no key and touches no chain: on
a fleet with a task market only the wallet node signs.
"""

from __future__ import annotations

import math
import sys
import time

from geometry_msgs.msg import PoseStamped
from pydantic import Field, field_validator
from rclpy.node import Node

from depai.msg import NavigationStatus
from depai.srv import PlanPath
from depai_nodes.common.params import ParamsModel, declare_params
from depai_nodes.common.qos import RELIABLE_QOS
from depai_nodes.common.runner import run_node

from .core import PatrolAgent, parse_waypoints

_RESULT_NAMES = {getattr(PlanPath.Response, n): n for n in dir(PlanPath.Response) if n.isupper() and isinstance(getattr(PlanPath.Response, n), int)}
_NAV_NAMES = {getattr(NavigationStatus, n): n for n in ("IDLE", "FOLLOWING", "ARRIVED", "STOPPED")}


class AgentParams(ParamsModel):
    waypoints: list[float] = Field(default_factory=list, description="x, y, yaw triples in the map frame (m, m, rad)")
    loop: bool = Field(True, description="start over after the last waypoint")
    frame_id: str = Field("map", min_length=1, description="frame of the waypoints")
    mode: str = Field("", description="planner mode per request: '' (planner default), 'optimal' or 'smooth'")
    start_delay: float = Field(2.0, ge=0.0, le=600.0, description="s to wait before the first request (let the stack come up)")
    retry_period: float = Field(1.0, gt=0.0, le=600.0, description="s between retries of a refused or failed request")
    max_attempts: int = Field(20, ge=1, le=100000, description="transient refusals of one waypoint before it is skipped")
    request_timeout: float = Field(5.0, gt=0.0, le=600.0, description="s to wait for the planner's answer")
    goal_tolerance: float = Field(0.15, gt=0.0, le=5.0, description="m; a plan shorter than this means already there")

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
        self._start = time.monotonic() + self.params.start_delay
        self._pending = None
        self._pending_since = 0.0
        self._make_agent()
        self.create_timer(0.1, self._tick)

    def _make_agent(self) -> None:
        p = self.params
        self.agent = PatrolAgent(parse_waypoints(p.waypoints), loop=p.loop, retry_period=p.retry_period, max_attempts=p.max_attempts)
        self.get_logger().info(f"patrol of {len(self.agent.waypoints)} waypoint(s), loop={p.loop}")

    def _on_params(self, params: AgentParams) -> None:
        self.params = params
        self._pending = None
        self._make_agent()

    def _log(self, line: str | None, warn: bool = False) -> None:
        # Two call sites on purpose: rclpy refuses one call site logging at two severities.
        if not line:
            return
        if warn:
            self.get_logger().warning(line)
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
                    self._log(self.agent.on_request_failed(now, "no response"), warn=True)
                    return
                name = _RESULT_NAMES.get(response.result, f"UNKNOWN({response.result})")
                line = self.agent.on_plan_result(name, now, response.length, self.params.goal_tolerance)
                self._log(line + ("" if name == "SUCCESS" else f" ({response.message})"), warn=name != "SUCCESS")
            elif now - self._pending_since > self.params.request_timeout:
                self._pending.cancel()
                self._pending = None
                self._log(self.agent.on_request_failed(now, f"no answer within {self.params.request_timeout:g} s"), warn=True)
            return
        if not self.client.service_is_ready():
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
        self._log(self.agent.on_navigation(state, time.monotonic()))


def main(args=None) -> int:
    return run_node(AgentNode, args)


if __name__ == "__main__":
    sys.exit(main())
