"""WalletProxy sends an unanswered request again (the defect the chain fault suite found: a
request lost with a killed wallet was waited out for the caller's whole timeout, 90 s for
telemetry's anchors). Real rclpy nodes over real DDS: a stand-in wallet service that leaves the
first request unanswered (as a wallet killed with it in flight does) and answers the next."""

from __future__ import annotations

import threading
import time

import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor

from depai.srv import AnchorBatch
from depai_nodes.chain.intents import AnchorRequest, Result
from depai_nodes.wallet.proxy import WalletProxy


def test_an_unanswered_wallet_request_is_sent_again(ros_domain):
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=ros_domain)
    server = rclpy.create_node("wallet_standin", namespace="/robot9", context=ctx)
    caller = rclpy.create_node("telemetry_standin", namespace="/robot9", context=ctx)
    seen: list[float] = []
    release = threading.Event()

    def on_anchor(req, resp):
        seen.append(time.monotonic())
        if len(seen) == 1:
            release.wait(60.0)  # the first request is never answered in time (its wallet died)
        resp.result, resp.machine, resp.tx_hash, resp.block_number = Result.SUCCESS, "0xabc", "0x" + "12" * 32, 7
        return resp

    server.create_service(AnchorBatch, "wallet/anchor_batch", on_anchor, callback_group=ReentrantCallbackGroup())
    executor = MultiThreadedExecutor(num_threads=3, context=ctx)
    executor.add_node(server)
    executor.add_node(caller)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        proxy = WalletProxy(caller, discovery_timeout_s=10.0, resend_s=1.0)
        req = AnchorRequest(batch_id="b" * 32, root="0x" + "ab" * 32, message_count=3, start_time=1, end_time=2, uri="file:///x")
        out = proxy.anchor(req, timeout_s=30.0)
        # the first request is held past the caller's timeout: an answer can only be a resend's
        assert out.result == Result.SUCCESS and out.block_number == 7, out
        assert len(seen) >= 2, "the request was not sent again"
        assert not release.is_set()
    finally:
        release.set()
        executor.shutdown(timeout_sec=2.0)
        caller.destroy_node()
        ctx.try_shutdown()
