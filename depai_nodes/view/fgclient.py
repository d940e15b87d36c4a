"""A small Foxglove WebSocket protocol client (subprotocol `foxglove.sdk.v1`), ROS-free.

What the Foxglove app does when it connects, enough to check the view's endpoint without the
app: read the server's `serverInfo` and `advertise` operations, subscribe to channels, and decode
the binary `messageData` frames (opcode 0x01, uint32 subscription id, uint64 timestamp, payload)
with the schema the channel advertised (protobuf: a base64 FileDescriptorSet; json: JSON).

    python -m depai_nodes.view.fgclient ws://127.0.0.1:8765 --seconds 5   # channels and counts
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
import time
from dataclasses import dataclass, field

SUBPROTOCOL = "foxglove.sdk.v1"

__all__ = ["Channel", "FoxgloveClient", "SUBPROTOCOL"]


@dataclass
class Channel:
    id: int
    topic: str
    encoding: str
    schema_name: str
    schema: str
    schema_encoding: str
    _decoder: object = field(default=None, repr=False)

    def decode(self, payload: bytes):
        """The payload as a protobuf message (protobuf) or a Python object (json)."""
        if self.encoding == "json":
            return json.loads(payload)
        if self.encoding != "protobuf":
            raise ValueError(f"channel {self.topic}: encoding '{self.encoding}' not supported")
        if self._decoder is None:
            from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

            files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(self.schema))
            pool = descriptor_pool.DescriptorPool()
            for f in files.file:
                pool.Add(f)
            self._decoder = message_factory.GetMessageClass(pool.FindMessageTypeByName(self.schema_name))
        return self._decoder.FromString(payload)


class FoxgloveClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        from websockets.sync.client import connect

        self._connection = connect(url, subprotocols=[SUBPROTOCOL], open_timeout=timeout, max_size=64 * 1024 * 1024)
        self.ws = self._connection.__enter__()
        self.server_info: dict | None = None
        self.channels: dict[int, Channel] = {}
        self._subs: dict[int, int] = {}  # subscription id -> channel id
        self._next = 1

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def __enter__(self) -> FoxgloveClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _handle_text(self, text: str) -> None:
        op = json.loads(text)
        if op.get("op") == "serverInfo":
            self.server_info = op
        elif op.get("op") == "advertise":
            for c in op["channels"]:
                self.channels[c["id"]] = Channel(c["id"], c["topic"], c["encoding"], c.get("schemaName", ""),
                                                 c.get("schema", ""), c.get("schemaEncoding", ""))
        elif op.get("op") == "unadvertise":
            for cid in op.get("channelIds", []):
                self.channels.pop(cid, None)

    def recv(self, timeout: float):
        """One frame: None after a text operation, else (channel, timestamp ns, payload)."""
        frame = self.ws.recv(timeout=timeout)
        if isinstance(frame, str):
            self._handle_text(frame)
            return None
        if frame[0] != 0x01:
            return None
        sub_id, ts = struct.unpack_from("<IQ", frame, 1)
        channel = self.channels.get(self._subs.get(sub_id, -1))
        return (channel, ts, bytes(frame[13:])) if channel is not None else None

    def wait_channels(self, topics: set[str], timeout: float = 10.0) -> dict[str, Channel]:
        """Read until every topic in `topics` is advertised; returns topic -> channel."""
        deadline = time.monotonic() + timeout
        while True:
            have = {c.topic: c for c in self.channels.values()}
            if topics <= set(have):
                return have
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"not advertised within {timeout} s: {sorted(topics - set(have))} (have {sorted(have)})")
            try:
                self.recv(timeout=left)
            except TimeoutError:
                pass

    def subscribe(self, channel: Channel) -> int:
        sub_id = self._next
        self._next += 1
        self._subs[sub_id] = channel.id
        self.ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": sub_id, "channelId": channel.id}]}))
        return sub_id

    def messages(self, seconds: float):
        """Yield (channel, timestamp ns, payload) for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self.recv(timeout=left)
            except TimeoutError:
                return
            if got is not None:
                yield got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fgclient", description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8765")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        client = FoxgloveClient(args.url)
    except (OSError, TimeoutError) as error:
        print(f"fgclient: cannot connect to {args.url}: {error}", file=sys.stderr)
        return 1
    with client:
        try:
            client.wait_channels(set(), timeout=2.0)
            for _ in client.messages(1.0):
                pass
        except TimeoutError:
            pass
        for c in list(client.channels.values()):
            client.subscribe(c)
        counts: dict[str, int] = {}
        for channel, _, payload in client.messages(args.seconds):
            channel.decode(payload)
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
        for c in sorted(client.channels.values(), key=lambda c: c.topic):
            print(f"{c.topic:<24} {c.schema_name or c.encoding:<28} {counts.get(c.topic, 0)} messages in {args.seconds:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
