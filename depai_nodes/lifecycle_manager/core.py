"""What the lifecycle manager does, ROS-free: which nodes, in which order, which transitions.

Managed nodes come in groups brought up in order: each fleet node is its own group (they do not
depend on each other), then one group per robot whose nodes come up in the listed order (the
wallet before the identity and telemetry that ask it). A node that cannot be brought up stops the
rest of its group (they need it), never the other groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from depai_nodes.common.diagnostics import ERROR, OK, WARN  # ROS-free levels

# lifecycle_msgs/msg/Transition ids
CONFIGURE, CLEANUP, ACTIVATE, DEACTIVATE = 1, 2, 3, 4
TRANSITION_NAMES = {CONFIGURE: "configure", CLEANUP: "cleanup", ACTIVATE: "activate", DEACTIVATE: "deactivate"}


def fqn(name: str, namespace: str = "/") -> str:
    """'/a/b' stays; 'robot1/wallet' in namespace '/' is '/robot1/wallet'."""
    if name.startswith("/"):
        return name
    namespace = namespace.rstrip("/")
    return f"{namespace}/{name}"


def managed_groups(fleet_nodes: list[str], robots: list[str], robot_nodes: list[str], namespace: str = "/") -> list[list[str]]:
    groups = [[fqn(n, namespace)] for n in fleet_nodes]
    groups += [[fqn(f"{robot}/{n}", namespace) for n in robot_nodes] for robot in robots if robot_nodes]
    return groups


def leave_inactive(previous: str, state: str, held: bool) -> bool:
    """An active node found inactive was deactivated on purpose (`ros2 lifecycle set ... deactivate`):
    the manager leaves it so (a crashed, respawned node comes back 'unconfigured', and is brought up)."""
    return state == "inactive" and (held or previous == "active")


def transitions_to_active(state: str) -> list[int] | None:
    """The transitions that take a node from `state` (a lifecycle_msgs state label) to active;
    None when it cannot get there (finalized, or in a transition)."""
    return {"unconfigured": [CONFIGURE, ACTIVATE], "inactive": [ACTIVATE], "active": []}.get(state)


@dataclass
class NodeRecord:
    """What the manager knows of one managed node (for its log lines and diagnostics)."""

    name: str
    state: str = "unknown"      # last state read, or 'unavailable'
    failure: str = ""           # '' or what failed: 'configure failed', 'no lifecycle services', ...
    reported: bool = False      # the current failure was logged (once per failure)
    activations: int = 0        # times the manager brought it to active (a respawned node: > 1)
    held: bool = False          # deactivated by someone else (an operator): left inactive
    history: list[str] = field(default_factory=list)
    attempts: int = 0           # bring-up attempts since it was last active
    transition: str = ""        # the transition under way ('configure', 'activate'), '' when none
    waiting_for: str = ""       # an earlier node of its group that is not up: this one is not tried
    transition_failed: bool = False  # the current failure is a transition that failed (not a missing node)
    node_error: str = ""        # the node's own word on its state (its /diagnostics 'lifecycle' entry)

    def fail(self, what: str, transition_failed: bool = True) -> str | None:
        """Record a failure; the line to log when it is new (not repeated every check)."""
        changed = what != self.failure or not self.reported
        self.failure, self.reported, self.transition_failed = what, True, transition_failed
        return f"{self.name}: {what}" if changed else None

    def ok(self) -> str | None:
        """Record success; a 'recovered' line when it had failed."""
        line = f"{self.name}: active again (was: {self.failure})" if self.failure else None
        self.failure, self.reported, self.transition_failed, self.attempts, self.node_error = "", False, False, 0, ""
        return line

    def status(self) -> tuple[int, str, dict[str, str]]:
        """/diagnostics level, message and values (common/diagnostics.py levels). OK: active;
        WARN: not active yet, being brought up, waiting for an earlier node of its group, no
        lifecycle services (not started, crashed), left inactive by an operator; ERROR: a transition
        failed (with the node's own error when its diagnostics said it)."""
        values = {"state": self.state, "attempts": str(self.attempts), "activations": str(self.activations)}
        tries = f"attempt {self.attempts}" if self.attempts else "not tried yet"
        if self.failure and self.transition_failed:
            values["failure"] = self.failure
            if self.node_error:
                values["node_says"] = self.node_error
            why = f": {self.node_error}" if self.node_error else ""
            return ERROR, f"{self.failure} ({tries}){why}", values
        if self.transition:
            return WARN, f"{self.state}: being brought up ({self.transition}, {tries})", values
        if self.failure:  # no answer from its lifecycle services
            values["failure"] = self.failure
            return WARN, f"{self.state}: {self.failure} ({tries})", values
        if self.state == "active":
            return OK, "active" + (f" (brought up {self.activations} times)" if self.activations > 1 else ""), values
        if self.held:
            return WARN, "inactive: deactivated by someone else, left so", values
        if self.waiting_for:
            values["waiting_for"] = self.waiting_for
            return WARN, f"{self.state}: waiting for {self.waiting_for} (earlier in its group)", values
        return WARN, f"{self.state}: not active yet ({tries})", values


def overall_status(records: list[NodeRecord]) -> tuple[int, str, dict[str, str]]:
    """The manager's summary: ERROR when any node's transition failed, WARN when any is not active."""
    levels = {r.name: r.status()[0] for r in records}
    active = sum(1 for r in records if r.state == "active" and not r.failure)
    failed = [n for n, lv in levels.items() if lv == ERROR]
    pending = [n for n, lv in levels.items() if lv == WARN]
    values = {"managed": str(len(records)), "active": str(active)}
    if failed:
        values["failed"] = ", ".join(failed)
        return ERROR, f"{active} of {len(records)} active; failed: {', '.join(failed)}", values
    if pending:
        values["not_active"] = ", ".join(pending)
        return WARN, f"{active} of {len(records)} active; not yet: {', '.join(pending)}", values
    return OK, f"all {len(records)} managed node(s) active", values
