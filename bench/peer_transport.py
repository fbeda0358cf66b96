"""Peer transport throughput over loopback, against plain asyncio streams in the same run.

    .venv/bin/python bench/peer_transport.py [--messages 200000] [--loop uvloop|asyncio]

Rows:
- one-way: node a ``send``s small Raft Heartbeats to node b until b's ``on_message`` saw
  them all (encode, queue, frame, write, read, decode, dispatch). Baseline: the same
  number of pre-encoded frames written on a raw asyncio stream and split by a minimal
  reader (no codec, no queue): the ceiling of the sockets and the loop.
- request/reply: ``request`` with 64 in flight, the handler answering at once.
  Baseline: a plain asyncio echo of the same frames, 64 in flight on one connection.
- one-way 64 KiB AppendEntries (one entry each): replication bandwidth; the baseline
  writes the same frames raw. msg/s x 64 KiB = bytes/s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from edgelite.cluster.transport import PeerTransport
from edgelite.protocol.peer import (
    ForwardRequest,
    ForwardResponse,
    PeerMessage,
    RpcBody,
    encode_frame,
    encode_peer_message,
)
from edgelite.raft.messages import AppendEntries, Heartbeat
from edgelite.raft.types import Entry

SECRET = b"benchmark-secret-benchmark-secret"
WINDOW = 64
LARGE_BYTES = 64 * 1024


async def _pair(on_message: Callable[[str, PeerMessage], None],
                on_request: Callable[[str, RpcBody], Awaitable[RpcBody]] | None = None,
                ) -> tuple[PeerTransport, PeerTransport]:
    a = PeerTransport("a", SECRET, "127.0.0.1", 0, lambda *_: None,
                      queue_messages_max=1 << 20, queue_bytes_max=1 << 30)
    b = PeerTransport("b", SECRET, "127.0.0.1", 0, on_message, on_request=on_request,
                      queue_messages_max=1 << 20, queue_bytes_max=1 << 30)
    await a.start()
    await b.start()
    a.set_peer("b", *b.listen_address)
    b.set_peer("a", *a.listen_address)
    return a, b


def _heartbeat(index: int) -> PeerMessage:
    return Heartbeat("a", "b", 1, index)


_BLOB = b"e" * LARGE_BYTES


def _append(index: int) -> PeerMessage:
    return AppendEntries("a", "b", 1, index, 1, (Entry(1, index + 1, data=_BLOB),), index)


async def transport_one_way(count: int, make: Callable[[int], PeerMessage] = _heartbeat
                            ) -> float:
    done = asyncio.Event()
    received = 0

    def on_message(_peer: str, _message: PeerMessage) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    a, b = await _pair(on_message)
    a.send("b", make(0))  # connect first: measure steady state
    while received < 1:
        await asyncio.sleep(0.001)
    received = 0
    started = time.perf_counter()
    for index in range(count):
        a.send("b", make(index))
        if index % 100 == 99:
            await asyncio.sleep(0)  # let the link task write while we produce
    await done.wait()
    elapsed = time.perf_counter() - started
    await a.stop()
    await b.stop()
    return count / elapsed


async def raw_one_way(count: int, make: Callable[[int], PeerMessage] = _heartbeat) -> float:
    frame = encode_frame(encode_peer_message(make(12345)))
    done = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = 0
        buffer = b""
        while seen < count:
            buffer += await reader.read(256 * 1024)
            position = 0
            while len(buffer) - position >= 4:
                size = int.from_bytes(buffer[position:position + 4], "big")
                if len(buffer) - position < 4 + size:
                    break
                position += 4 + size
                seen += 1
            buffer = buffer[position:]
        done.set()
        writer.close()

    listener = await asyncio.start_server(server, "127.0.0.1", 0)
    _reader, writer = await asyncio.open_connection(*listener.sockets[0].getsockname()[:2])
    started = time.perf_counter()
    for index in range(count):
        writer.write(frame)
        if index % 100 == 99:
            await writer.drain()
    await writer.drain()
    await done.wait()
    elapsed = time.perf_counter() - started
    writer.close()
    listener.close()
    await listener.wait_closed()
    return count / elapsed


async def transport_requests(count: int) -> float:
    async def answer(_peer: str, body: RpcBody) -> RpcBody:
        assert isinstance(body, ForwardRequest)
        return ForwardResponse(body.request_id, 200, b"ok", {})

    a, b = await _pair(lambda *_: None, answer)
    request = ForwardRequest(1, "pipeline", "db", {"sub": "u"}, b"x" * 32, {})
    await a.request("b", request, 5.0)
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await a.request("b", request, 5.0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WINDOW)))
    elapsed = time.perf_counter() - started
    await a.stop()
    await b.stop()
    return count / elapsed


async def raw_echo(count: int) -> float:
    frame = encode_frame(encode_peer_message(
        ForwardRequest(1, "pipeline", "db", {"sub": "u"}, b"x" * 32, {})))

    served = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(header, "big"))
                writer.write(header + body)
        except asyncio.IncompleteReadError:
            writer.close()
        served.set()

    listener = await asyncio.start_server(server, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*listener.sockets[0].getsockname()[:2])
    started = time.perf_counter()
    sent = 0
    for _ in range(min(WINDOW, count)):
        writer.write(frame)
        sent += 1
    for _ in range(count):
        header = await reader.readexactly(4)
        await reader.readexactly(int.from_bytes(header, "big"))
        if sent < count:
            writer.write(frame)
            sent += 1
    elapsed = time.perf_counter() - started
    writer.close()
    await served.wait()
    listener.close()
    await listener.wait_closed()
    return count / elapsed


async def run(messages: int) -> None:
    rows = [
        ("one-way small messages", await transport_one_way(messages),
         await raw_one_way(messages)),
        (f"request/reply, {WINDOW} in flight", await transport_requests(messages // 4),
         await raw_echo(messages // 4)),
        (f"one-way {LARGE_BYTES >> 10} KiB AppendEntries",
         await transport_one_way(messages // 50, _append),
         await raw_one_way(messages // 50, _append)),
    ]
    print(f"{'workload':34} {'transport msg/s':>16} {'plain asyncio':>14} {'ratio':>6}")
    for name, ours, baseline in rows:
        print(f"{name:34} {ours:16,.0f} {baseline:14,.0f} {ours / baseline:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    options = parser.parse_args()
    print(f"loop={options.loop} messages={options.messages}")
    if options.loop == "uvloop":
        import uvloop

        uvloop.run(run(options.messages))
    else:
        asyncio.run(run(options.messages))


if __name__ == "__main__":
    main()
