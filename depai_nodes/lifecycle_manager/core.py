"""What the lifecycle manager does, ROS-free: which nodes, in which order, which transitions.

Managed nodes come in groups brought up in order: each fleet node is its own group (they do not
depend on each other), then one group per robot whose nodes come up in the listed order (the
wallet before the identity and telemetry that ask it). A node that cannot be brought up stops the
rest of its group (they need it), never the other groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def fail(self, what: str) -> str | None:
        """Record a failure; the line to log when it is new (not repeated every check)."""
        changed = what != self.failure or not self.reported
        self.failure, self.reported = what, True
        return f"{self.name}: {what}" if changed else None

    def ok(self) -> str | None:
        """Record success; a 'recovered' line when it had failed."""
        line = f"{self.name}: active again (was: {self.failure})" if self.failure else None
        self.failure, self.reported = "", False
        return line
