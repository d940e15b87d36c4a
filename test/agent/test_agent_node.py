"""The agent node as its own process over real DDS, with the planner and controller played by the
test's probe so that their faults can be injected on cue: a plan nobody follows, a controller that
falls silent, a goal from someone else that arrives, a repeated cause (throttled, with counts)."""

import threading
import time

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path

from depai.msg import NavigationStatus
from depai.srv import PlanPath
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

STATES = {"IDLE": NavigationStatus.IDLE, "FOLLOWING": NavigationStatus.FOLLOWING,
          "ARRIVED": NavigationStatus.ARRIVED, "STOPPED": NavigationStatus.STOPPED}


class FakeStack:
    """plan_path service + `plan` publisher (the planner) and navigation_status at 20 Hz (the controller)."""

    def __init__(self, probe) -> None:
        self.node = probe.node
        self.requests: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        self.state, self.reason, self.remaining = "IDLE", "", 0.0
        self.silent = False
        self.answer = "SUCCESS"
        self.on_plan = "ignore"  # what the "controller" does with a new path: ignore | arrive | follow
        self.plan_pub = probe.publisher(Path, "plan", LATCHED_QOS)  # as the planner publishes it
        self.status_pub = probe.publisher(NavigationStatus, "navigation_status", RELIABLE_QOS)
        self.node.create_service(PlanPath, "plan_path", self._on_request)
        self.node.create_timer(0.05, self._tick)

    def set(self, state: str, reason: str = "", remaining: float = 0.0) -> None:
        with self.lock:
            self.state, self.reason, self.remaining = state, reason, remaining

    def publish_plan(self, x: float, y: float) -> None:
        path = Path()
        path.header.frame_id = "map"
        for px, py in ((0.0, 0.0), (x, y)):
            pose = PoseStamped()
            pose.pose.position.x, pose.pose.position.y = px, py
            path.poses.append(pose)
        self.plan_pub.publish(path)

    def _on_request(self, request, response):
        goal = (request.goal.pose.position.x, request.goal.pose.position.y)
        with self.lock:
            self.requests.append(goal)
        if self.answer == "SUCCESS":
            self.publish_plan(*goal)
            if self.on_plan in ("arrive", "follow"):
                self.set("FOLLOWING", remaining=2.0)
            if self.on_plan == "arrive":
                threading.Timer(0.5, self._arrive).start()
            response.result = PlanPath.Response.SUCCESS
            response.length = 3.0
        else:
            response.result = getattr(PlanPath.Response, self.answer)
            response.message = "injected"
        return response

    def _arrive(self) -> None:
        if self.on_plan == "arrive":  # still: the test may have changed its mind meanwhile
            self.set("ARRIVED")

    def _tick(self) -> None:
        with self.lock:
            if self.silent:
                return
            msg = NavigationStatus()
            msg.state, msg.reason, msg.distance_remaining = STATES[self.state], self.reason, float(self.remaining)
        self.status_pub.publish(msg)

    def wait_request(self, goal: tuple[float, float], after: int, timeout: float = 15.0) -> int:
        """Index of the first request for `goal` after the first `after` requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for i in range(after, len(self.requests)):
                    if self.requests[i] == goal:
                        return i
            time.sleep(0.02)
        raise TimeoutError(f"no request for {goal} after #{after} within {timeout} s: {self.requests}")

    def wait_requests(self, count: int, timeout: float = 15.0) -> list[tuple[float, float]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise TimeoutError(f"{len(self.requests)} plan requests within {timeout} s, wanted {count}: {self.requests}")


AGENT = {
    "waypoints": [1.0, 0.0, 0.0, 2.0, 0.0, 0.0],
    "start_delay": 0.0, "retry_period": 0.3, "follow_timeout": 1.5, "stall_timeout": 30.0,
    "controller_timeout": 1.0, "request_timeout": 5.0, "log_period": 30.0,
}


def test_the_agent_never_stalls_silently_and_counts_only_its_own_arrivals(ros_node, start_node):
    stack = FakeStack(ros_node)
    agent = start_node("agent", parameters=AGENT)

    # 1. An accepted plan the controller never follows (it stays IDLE) is asked for again.
    first = stack.wait_requests(1)
    assert first == [(1.0, 0.0)]
    t0 = time.monotonic()
    again = stack.wait_requests(2)
    assert again[1] == (1.0, 0.0) and time.monotonic() - t0 >= 1.0
    log = agent.wait_for_log("the accepted path to waypoint 0 was not followed within 1.5 s (controller: IDLE); asking for a new plan")

    # 2. Now the controller follows each new path and arrives: the agent moves on to waypoint 1.
    stack.on_plan = "arrive"
    n = len(stack.requests)
    stack.wait_request((2.0, 0.0), after=n)
    agent.wait_for_log("arrived at waypoint 0 (1.00, 0.00)")

    # 3. While it follows its path to waypoint 1, someone else's goal replaces it and arrives:
    #    that is not the agent's arrival; it resumes waypoint 1 instead of moving on.
    #    (The "controller" set FOLLOWING for the path to waypoint 1; it does not arrive.)
    stack.on_plan = "follow"
    time.sleep(0.5)
    stack.set("FOLLOWING", remaining=2.0)
    n = len(stack.requests)
    stack.publish_plan(7.0, 7.0)
    agent.wait_for_log("preempted: the controller now follows a path to (7.00, 7.00)")
    stack.set("FOLLOWING", remaining=9.0)
    time.sleep(0.5)
    stack.set("ARRIVED")
    assert stack.requests[n:][:1] in ([], [(2.0, 0.0)])
    stack.wait_request((2.0, 0.0), after=n)
    log = agent.wait_for_log("the goal from elsewhere ended (ARRIVED); resuming waypoint 1")
    assert "arrived at waypoint 1" not in log
    assert (1.0, 0.0) not in stack.requests[n:]  # it did not move on as if it had arrived

    # 4. The controller falls silent: logged once, nothing is asked while it is; back: logged once.
    stack.on_plan = "ignore"
    stack.silent = True
    agent.wait_for_log("controller (navigation_status) failed")
    quiet_from = len(stack.requests)
    time.sleep(3.0)
    assert len(stack.requests) == quiet_from
    stack.set("IDLE")
    stack.silent = False
    agent.wait_for_log("controller (navigation_status) recovered after")
    stack.wait_requests(quiet_from + 1)
    log = agent.log()
    assert log.count("controller (navigation_status) failed") == 1
    assert log.count("controller (navigation_status) recovered") == 1

    # 5. A repeated cause is throttled with a count: the planner keeps refusing (transient).
    stack.answer = "MAP_NOT_READY"
    n = len(stack.requests)
    stack.wait_requests(n + 6)
    log = agent.log()
    assert log.count("MAP_NOT_READY; retrying") == 1, log[-3000:]
    assert agent.process.poll() is None
