"""Watching a running stack from outside it: an rclpy node that spins in a background thread.

The tests' probe, the fault harness's recorder and the benches all need the same thing: a node
of their own, on the stack's ROS domain, in its own rclpy context (so that it never shares or
shuts down anybody else's), whose callbacks run while the caller's thread waits, sleeps or
drives a subprocess. ``BackgroundNode`` is that, once; ``SimClock`` is the other piece they
shared: the simulated time seen on ``/clock``, summed across simulator restarts.
"""

from __future__ import annotations

import threading

__all__ = ["BackgroundNode", "SimClock"]


class BackgroundNode:
    """``self.node`` (named ``name``, on ROS domain ``domain``) spun by a single-threaded
    executor in a daemon thread from construction until ``close()``. Entities may be created
    on it from any thread while it spins (the executor picks them up)."""

    def __init__(self, name: str, domain: int, *, thread_name: str = "") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=thread_name or name, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def close(self) -> None:
        """Stop spinning and release the node and its context (idempotent)."""
        if not self.context.ok():
            return
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=2.0)


class SimClock:
    """Simulated seconds seen on ``/clock`` so far. A restarted simulator starts its clock at 0
    again: only forward steps are summed, so the total keeps growing across restarts."""

    def __init__(self) -> None:
        self.total = 0.0
        self._last: float | None = None

    def on_clock(self, msg) -> float:
        """Take one ``rosgraph_msgs/Clock``; the total so far."""
        t = msg.clock.sec + msg.clock.nanosec * 1e-9
        if self._last is not None and t > self._last:
            self.total += t - self._last
        self._last = t
        return self.total
