"""The launcher's terminal: node log lines scroll, the fleet status table stays at the bottom.

The status node (depai_nodes/status) prints its table as a block of lines from FRAME_START to
FRAME_END. On a terminal (TTY) `depai launch` keeps the latest block drawn below the log lines
and redraws it in place (ANSI: cursor up, erase to the end of the screen), each line cut to the
terminal's width so wrapping cannot break the redraw. Anywhere else (a pipe, a CI log, `ros2
launch`) the blocks are plain periodic lines, prefixed like any node's. The run's summary
(SUMMARY_START ... FRAME_END) is printed for good in both cases. Control characters in any node's
line are shown, not obeyed (`printable`): text from the chain must not drive the terminal.
"""

from __future__ import annotations

import shutil
from typing import TextIO

from depai_nodes.status.core import FRAME_END, FRAME_START, SUMMARY_START

__all__ = ["Console", "printable"]

# Control characters in a node's line never reach the terminal: a task's station label or a DID
# name comes from the chain, where anyone can write escape sequences (clear the screen, rewrite
# the table, set the window title). ESC shows as ^[, the others as '?'.
_CONTROL = {c: "?" for c in [*range(0x00, 0x09), *range(0x0a, 0x20), 0x7f, *range(0x80, 0xa0)]}
_CONTROL[0x1b] = "^["


def printable(text: str) -> str:
    return text.translate(_CONTROL)


class Console:
    """Not thread-safe by itself: the supervisor calls `line()` under its print lock."""

    def __init__(self, out: TextIO, *, tty: bool, frame_label: str = "status"):
        self.out = out
        self.tty = tty
        self.frame_label = frame_label
        self._building: list[str] | None = None
        self._frame: list[str] = []  # the table drawn at the bottom (TTY)
        self._drawn = 0  # lines of it on screen
        self._observers: list = []

    def watch(self, observer) -> None:
        """Also hand every node line to ``observer(label, text)`` (after it is shown; it must be
        quick: the supervisor's print lock is held). The DAO round times the policy lines by it."""
        self._observers.append(observer)

    def _width(self) -> int:
        return max(20, shutil.get_terminal_size((120, 40)).columns - 1)

    def _erase(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        width = self._width()
        for text in self._frame:
            self.out.write(text[:width] + "\n")
        self._drawn = len(self._frame)

    def line(self, label: str, text: str) -> None:
        text = printable(text)
        try:
            self._show_line(label, text)
        finally:  # a closed terminal still leaves the lines to the observers
            for observer in self._observers:
                observer(label, text)

    def _show_line(self, label: str, text: str) -> None:
        if label == self.frame_label:
            if text.startswith((FRAME_START, SUMMARY_START)):
                self._building = [text]
                return
            if self._building is not None:
                if text != FRAME_END:
                    self._building.append(text)
                    return
                block, self._building = self._building + [FRAME_END], None
                self._show(block, summary=block[0].startswith(SUMMARY_START))
                return
        if self.tty:
            self._erase()
            self.out.write(f"[{label}] {text}\n")
            self._draw()
        else:
            self.out.write(f"[{label}] {text}\n")
        self.out.flush()

    def _show(self, block: list[str], *, summary: bool) -> None:
        if not self.tty:
            for text in block:
                self.out.write(f"[{self.frame_label}] {text}\n")
        elif summary:
            self._erase()
            self._frame = []
            for text in block:
                self.out.write(text + "\n")
        else:
            self._erase()
            self._frame = block
            self._draw()
        self.out.flush()
