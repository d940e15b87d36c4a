"""The node's own time for deadlines and periods: its ROS clock (``/clock`` under
``use_sim_time``), as float seconds that never run backwards.

Why not ``time.monotonic()``: with the simulator running, a node's timeouts, delays and rates
must follow simulated time (a simulation slower than real time must not make a
robot's drive "late", a paused one must not time everything out). Why not the bare ROS clock: a
restarted simulator starts its clock again at zero, and a deadline taken before the restart
would then lie minutes ahead. `NodeTime` re-bases such a jump: time continues from where it was
(the jump is reported once per jump through ``on_jump``), so every "now + timeout" stays
meaningful. Without ``use_sim_time`` the ROS clock is the system clock; a step of the system
clock backwards is re-based the same way.

ROS-free: `NodeTime(source)` takes any function returning seconds (tests drive it directly);
`NodeTime.of(node)` reads ``node.get_clock()``. Thread-safe (the requester asks from its worker
thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["NodeTime"]


class NodeTime:
    def __init__(self, source: Callable[[], float], on_jump: Callable[[float], None] | None = None) -> None:
        self._source = source
        self._on_jump = on_jump
        self._offset = 0.0
        self._last = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def of(cls, node, on_jump: Callable[[float], None] | None = None) -> NodeTime:
        clock = node.get_clock()
        return cls(lambda: clock.now().nanoseconds * 1e-9, on_jump)

    def now(self) -> float:
        """Seconds on the node's clock, re-based so that they never decrease."""
        raw = self._source()
        with self._lock:
            t = raw + self._offset
            if t < self._last:
                back = self._last - t
                self._offset += back
                t = self._last
                jumped = back
            else:
                jumped = 0.0
            self._last = t
        if jumped and self._on_jump is not None:
            self._on_jump(jumped)
        return t
