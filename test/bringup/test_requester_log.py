"""The requester node's log drain (its worker thread queues lines, the executor logs them): lines
of every severity, in any order, reach the real rclpy logger - rclpy refuses one call site logging
at two severities (ValueError), which once ended the requester at its first refused post."""

import queue
import types

import rclpy.logging

from depai_nodes.requester.node import RequesterNode


def test_info_then_warning_then_error_lines_are_all_logged():
    logger = rclpy.logging.get_logger("test_requester_drain")
    stub = types.SimpleNamespace(inbox=queue.Queue(), get_logger=lambda: logger)
    for level, text in [("info", "posted task #1"), ("warn", "post refused: BUSY RateLimited"), ("error", "chain down"),
                        ("info", "posted task #2"), ("warn", "again")]:
        stub.inbox.put((level, text))
    RequesterNode._drain(stub)  # raised ValueError('Logger severity cannot be changed between calls.') before
    assert stub.inbox.empty()
