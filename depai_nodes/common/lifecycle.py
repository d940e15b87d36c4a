"""Managed (lifecycle) nodes: the one mechanism the chain-facing nodes share.

A `ManagedNode` is an ``rclpy.lifecycle.LifecycleNode``: the standard ``lifecycle_msgs``
services (``<node>/get_state``, ``<node>/change_state``, ...) exist, so ``ros2 lifecycle
get/set/nodes`` and a lifecycle manager (``depai_nodes/lifecycle_manager``) drive it. A node
converts by subclassing it and moving its start-up into four hooks, each of which either returns
or raises:

- ``configure_managed()``: load the configuration and keystore (no network, no signing yet);
- ``activate_managed()``: connect and start the work (signing, anchoring, polling);
- ``deactivate_managed()``: stop the work with nothing lost (requests in flight finish or are
  answered with a clear result code; state stays for the next activation);
- ``cleanup_managed()``: release everything ``configure_managed`` took (keys, clients).

A hook that raises fails its transition (``FAILURE``): the node stays where it was, the reason is
logged as one line and kept in ``lifecycle_error`` (the diagnostics show it). Shutdown from any
state runs deactivate and cleanup as needed; so does ``finalize_managed()``, which
``common/runner.py`` calls when the process stops.

``autostart`` (a read-only parameter, default true): the node configures and activates itself
as soon as it is built, so a node started by hand (or by a test) works as before; a configure
failure then ends the process with code 2, as a bad parameter does. A stack whose lifecycle
manager brings the nodes up sets ``autostart: false`` on them.
"""

from __future__ import annotations

import threading

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from .logthrottle import CauseThrottle, with_count
from .params import ParameterError

__all__ = ["ManagedNode", "TransitionFailed"]


class TransitionFailed(ParameterError):
    """An autostart transition failed: a configuration problem (exit code 2, no respawn)."""

    def __init__(self, transition: str, reason: str) -> None:
        super().__init__("autostart", f"{transition} failed: {reason}")


class ManagedNode(LifecycleNode):
    def __init__(self, node_name: str, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.autostart = bool(self.declare_parameter(
            "autostart", True, ParameterDescriptor(
                description="configure and activate at start (false: a lifecycle manager does)", read_only=True)).value)
        self.lifecycle_error = ""
        self._lifecycle_lock = threading.RLock()
        # rclpy's change_state service raises (and so ends the process) on a transition the current
        # state does not have, e.g. `activate` while unconfigured: any client could kill the node.
        # Answered with success=false instead, as rclcpp does.
        self._upstream_change_state = self._service_change_state.callback
        self._service_change_state.callback = self._change_state_checked
        # /diagnostics (common/diagnostics.py): the lifecycle state; nodes add their own entries to
        # self.diagnostics.diag. ERROR: a failed transition; WARN: not active; OK: active.
        from .diagnostics import ERROR, OK, WARN, NodeDiagnostics

        self.diagnostics = NodeDiagnostics(self)
        self.diagnostics.diag.check("lifecycle", lambda: (
            ERROR if self.lifecycle_error else (OK if self.is_active else WARN),
            f"{self.lifecycle_state}" + (f" ({self.lifecycle_error})" if self.lifecycle_error else ""),
            {"state": self.lifecycle_state, "autostart": self.autostart}))

    def _change_state_checked(self, request, response):
        from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

        try:
            return self._upstream_change_state(request, response)
        except _rclpy.RCLError:
            self.get_logger().warning(
                f"refused transition {request.transition.id} {request.transition.label!r}: not available in state {self.lifecycle_state}")
            response.success = False
            return response

    # ---- hooks: a node overrides what it needs ----
    def configure_managed(self) -> None:
        pass

    def activate_managed(self) -> None:
        pass

    def deactivate_managed(self) -> None:
        pass

    def cleanup_managed(self) -> None:
        pass

    # ---- state ----
    @property
    def lifecycle_state(self) -> str:
        """'unconfigured', 'inactive', 'active', 'finalized' or a transition's label."""
        return self._state_machine.current_state[1]

    @property
    def is_active(self) -> bool:
        return self.lifecycle_state == "active"

    # ---- the transitions (rclpy calls these) ----
    def _run(self, transition: str, hook) -> TransitionCallbackReturn:
        with self._lifecycle_lock:
            try:
                hook()
            except Exception as error:  # noqa: BLE001 - a failed transition is reported, never a crash
                reason = str(error) if isinstance(error, ParameterError) else f"{type(error).__name__}: {error}"
                self.lifecycle_error = f"{transition}: {reason}"
                # a manager retries a failing configure every few seconds: one line per cause a minute
                if not hasattr(self, "_transition_log"):
                    self._transition_log = CauseThrottle(60.0)
                log_now, held = self._transition_log.check(f"{transition}: {reason}")
                if log_now:
                    self.get_logger().error(with_count(f"{transition} failed: {reason}", held))
                return TransitionCallbackReturn.FAILURE
            self.lifecycle_error = ""
            self.get_logger().info(f"{transition}d" if transition.endswith("e") else f"{transition}ed")
            return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("configure", self.configure_managed)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._run("activate", self.activate_managed)
        if result == TransitionCallbackReturn.SUCCESS:
            super().on_activate(state)  # lifecycle publishers, if any
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._run("deactivate", self.deactivate_managed)
        if result == TransitionCallbackReturn.SUCCESS:
            super().on_deactivate(state)
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("cleanup", self.cleanup_managed)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release(state.label)
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release(state.label)
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured, everything released

    def _release(self, label: str) -> None:
        with self._lifecycle_lock:
            if label == "active":
                self._quiet(self.deactivate_managed)
            if label in ("active", "inactive"):
                self._quiet(self.cleanup_managed)

    def _quiet(self, hook) -> None:
        try:
            hook()
        except Exception as error:  # noqa: BLE001
            self.get_logger().error(f"releasing: {type(error).__name__}: {error}")

    # ---- the process around it (common/runner.py) ----
    def start_managed(self) -> None:
        """Autostart: configure and activate now; TransitionFailed when either fails."""
        if not self.autostart:
            self.get_logger().info("waiting for a lifecycle manager (autostart: false): unconfigured")
            return
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise TransitionFailed("configure", self.lifecycle_error)
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise TransitionFailed("activate", self.lifecycle_error)

    def finalize_managed(self) -> None:
        """The process stops: leave through the shutdown transition (deactivate, cleanup)."""
        if self.lifecycle_state in ("unconfigured", "inactive", "active"):
            try:
                self.trigger_shutdown()
            except Exception as error:  # noqa: BLE001
                self.get_logger().error(f"shutdown: {type(error).__name__}: {error}")
