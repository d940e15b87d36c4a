"""ROS wiring of the lifecycle manager: brings the managed nodes up, in order, and keeps them up.

As nav2_lifecycle_manager does, over the standard lifecycle_msgs services of each managed node
(`<node>/get_state`, `<node>/change_state`): configure, then activate, group by group (see
core.py). A node that fails a transition is reported (one ERROR line per failure, naming the node
and the transition; the node's own log says why) and the rest of its group waits; every
`check_period` s the manager reads every node's state again, so a node respawned by the
supervisor (back in 'unconfigured') is brought up again, and a failed one is retried. The work
runs in a worker thread; the executor only answers the service calls.
"""

from __future__ import annotations

import sys
import threading

from pydantic import Field
from rclpy.node import Node

from depai_nodes.common.params import READ_ONLY, ParamsModel, declare_params
from depai_nodes.common.runner import run_node
from depai_nodes.common.service import ANSWERED, PendingCall

from .core import TRANSITION_NAMES, NodeRecord, leave_inactive, managed_groups, overall_status, transitions_to_active


class LifecycleManagerParams(ParamsModel):
    fleet_nodes: list[str] = Field(default_factory=list, description="managed fleet nodes ('dao_listener', 'requester/wallet'), each brought up on its own", json_schema_extra=READ_ONLY)
    robots: list[str] = Field(default_factory=list, description="robot namespaces (the stack passes $(robots))", json_schema_extra=READ_ONLY)
    robot_nodes: list[str] = Field(default_factory=list, description="managed nodes of each robot, in bring-up order (wallet first)", json_schema_extra=READ_ONLY)
    service_timeout: float = Field(10.0, gt=0.0, le=600.0, description="s to wait for a node's lifecycle services / a transition's answer")
    check_period: float = Field(2.0, gt=0.0, le=600.0, description="s between checks of every managed node's state (a respawned node is brought up again)")


class LifecycleManagerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("lifecycle_manager", **kwargs)
        self.params = declare_params(self, LifecycleManagerParams)
        p = self.params
        self.groups = managed_groups(p.fleet_nodes, p.robots, p.robot_nodes, self.get_namespace())
        self.records = {name: NodeRecord(name) for group in self.groups for name in group}
        self._lc_clients: dict[str, tuple] = {}
        self._all_active = False
        self.stop_event = threading.Event()
        self.get_logger().info(f"managing {len(self.records)} node(s): {', '.join(self.records) or 'none'}")
        self._diagnostics()
        self.worker = threading.Thread(target=self._work, name="lifecycle-manager", daemon=True)
        self.worker.start()

    def _diagnostics(self) -> None:
        """/diagnostics (common/diagnostics.py): one entry per managed node (`node <name>`: OK
        active; WARN not active yet / being brought up / waiting / no lifecycle services, with the
        attempts; ERROR a failed transition, with the node's own error) and `managed nodes`, the
        worst of them. The node's error is its own /diagnostics 'lifecycle' entry, heard here."""
        from diagnostic_msgs.msg import DiagnosticArray

        from depai_nodes.common.diagnostics import NodeDiagnostics

        self.diag = NodeDiagnostics(self)
        self.diag.diag.check("managed nodes", lambda: overall_status(list(self.records.values())))
        for name, record in self.records.items():
            self.diag.diag.check(f"node {name}", record.status)
        self._lifecycle_entries = {f"{name}: lifecycle": record for name, record in self.records.items()}
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            record = self._lifecycle_entries.get(status.name)
            if record is not None:
                record.node_error = status.message if status.level == b"\x02" else ""

    # ---- service calls (from the worker; the executor delivers the answers) ----
    def _client(self, name: str):
        if name not in self._lc_clients:
            from lifecycle_msgs.srv import ChangeState, GetState

            self._lc_clients[name] = (self.create_client(GetState, f"{name}/get_state"),
                                   self.create_client(ChangeState, f"{name}/change_state"))
        return self._lc_clients[name]

    def _call(self, client, request, resend_s: float | None):
        """The answer, or None (no service, or none in time). get_state is sent again while
        unanswered (a node just respawned drops a request sent before its endpoints matched this
        client, common/service.py); a transition is sent once (it must not run twice)."""
        if not client.wait_for_service(timeout_sec=self.params.service_timeout):
            return None
        call = PendingCall(client, request, self.params.service_timeout, resend_s)
        return call.result if call.wait() == ANSWERED else None

    def get_state(self, name: str) -> str | None:
        from lifecycle_msgs.srv import GetState

        answer = self._call(self._client(name)[0], GetState.Request(), resend_s=1.0)
        return None if answer is None else answer.current_state.label

    def change_state(self, name: str, transition: int) -> bool | None:
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        request.transition.id = transition
        answer = self._call(self._client(name)[1], request, resend_s=None)
        return None if answer is None else bool(answer.success)

    # ---- the work ----
    def _work(self) -> None:
        while not self.stop_event.is_set():
            all_active = True
            for group in self.groups:
                for name in group:
                    if self.stop_event.is_set():
                        return
                    if not self._bring_up(name):
                        all_active = False
                        for later in group[group.index(name) + 1:]:
                            self.records[later].waiting_for = name
                        break  # the rest of the group needs this one
            if all_active and not self._all_active:
                self.get_logger().info(f"all {len(self.records)} managed node(s) active")
            self._all_active = all_active
            self.stop_event.wait(self.params.check_period)

    def _bring_up(self, name: str) -> bool:
        record = self.records[name]
        record.waiting_for = ""
        state = self.get_state(name)
        if state is None:
            record.state = "unavailable"
            record.attempts += 1
            self._report(record, f"no answer from its lifecycle services within {self.params.service_timeout:g} s", warn=True)
            return False
        previous, record.state = record.state, state
        if leave_inactive(previous, state, record.held):
            if not record.held:
                record.held = True
                self.get_logger().warning(f"{name}: deactivated by someone else: left inactive "
                                          f"(`ros2 lifecycle set {name} activate` resumes it)")
            return True
        record.held = False
        plan = transitions_to_active(state)
        if plan is None:
            self._report(record, f"is {state}: cannot be brought to active")
            return False
        if plan:
            record.attempts += 1
        for transition in plan:
            record.transition = TRANSITION_NAMES[transition]
            try:
                ok = self.change_state(name, transition)
            finally:
                record.transition = ""
            if not ok:
                what = TRANSITION_NAMES[transition]
                self._report(record, f"{what} failed (it stays {self.get_state(name) or 'unknown'}; its log says why)"
                             if ok is False else f"{what}: no answer within {self.params.service_timeout:g} s")
                return False
            record.state = "inactive" if TRANSITION_NAMES[transition] == "configure" else "active"
        if plan:
            record.activations += 1
            self.get_logger().info(f"{name}: active" + (f" (brought up {record.activations} times)" if record.activations > 1 else ""))
        line = record.ok()
        if line:
            self.get_logger().info(line)
        return True

    def _report(self, record: NodeRecord, what: str, warn: bool = False) -> None:
        line = record.fail(what, transition_failed=not warn)
        if line:
            text = f"{line}; retrying every {self.params.check_period:g} s"
            # one call site per severity: rclpy refuses a call site that changes its severity
            if warn:
                self.get_logger().warning(text)
            else:
                self.get_logger().error(text)

    def destroy_node(self) -> None:
        self.stop_event.set()
        self.worker.join(self.params.service_timeout + 1.0)
        super().destroy_node()


def main(args=None) -> int:
    return run_node(LifecycleManagerNode, args)


if __name__ == "__main__":
    sys.exit(main())
