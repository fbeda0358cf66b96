"""One authenticated stream to a peer, and what the transport keeps per peer."""

from __future__ import annotations

import asyncio
from collections import deque

from edgelite.cluster.transport.limits import PeerCounters
from edgelite.errors import ProtocolError
from edgelite.protocol.peer import (
    FRAME_HEADER_BYTES,
    HANDSHAKE_FRAME_BYTES_MAX,
    FrameDecoder,
    Handshake,
    PeerMessage,
    decode_peer_message,
    encode_frame,
    encode_peer_message,
)

__all__ = ["NOT_A_REQUEST", "Connection", "PeerLink", "run_handshake"]

NOT_A_REQUEST = -1


class Connection:
    """An authenticated stream. ``dialled``: this node opened it. Times are loop times."""

    __slots__ = ("closed", "decoder", "dialled", "established_at", "last_received",
                 "last_sent", "peer_id", "reader", "writer")

    def __init__(self, peer_id: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, dialled: bool, frame_bytes_max: int,
                 now: float) -> None:
        self.peer_id = peer_id
        self.reader = reader
        self.writer = writer
        self.dialled = dialled
        self.decoder = FrameDecoder(frame_bytes_max)
        self.closed = False
        self.established_at = now
        self.last_received = now
        self.last_sent = now

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()  # unsent bytes are worthless to a dead link


class PeerLink:
    """What this node knows about one other node.

    Invariants: ``queue_bytes`` is the sum of the queued frames' sizes; ``address``
    None means the peer is known only from an inbound connection (never dialled).
    """

    __slots__ = ("address", "changed", "connection", "counters", "failures", "node_id",
                 "queue", "queue_bytes", "task", "wakeup")

    def __init__(self, node_id: str, address: tuple[str, int] | None) -> None:
        self.node_id = node_id
        self.address = address
        self.queue: deque[tuple[bytes, int]] = deque()  # (frame, rpc id or NOT_A_REQUEST)
        self.queue_bytes = 0
        self.wakeup = asyncio.Event()  # something to do for the link task
        self.changed = asyncio.Event()  # connection or address changed: cut backoff short
        self.connection: Connection | None = None
        self.task: asyncio.Task[None] | None = None
        self.failures = 0  # consecutive failed dials or short-lived connections
        self.counters = PeerCounters()


async def run_handshake(handshake: Handshake, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    """Drive ``handshake`` to DONE over the stream (the caller bounds the time).

    Reads whole frames only, so application frames the peer sends right after the
    handshake stay in the reader's buffer for the connection's own decoder, and never
    meet the small handshake frame limit. Raises HandshakeError, ProtocolError, or the
    stream's errors (``asyncio.IncompleteReadError`` when the peer hangs up).
    """
    _write(writer, handshake.start())
    while not handshake.done:
        message = decode_peer_message(await _read_handshake_frame(reader))
        _write(writer, handshake.receive(message))
    await writer.drain()


def _write(writer: asyncio.StreamWriter, messages: list[PeerMessage]) -> None:
    for message in messages:
        writer.write(encode_frame(encode_peer_message(message), HANDSHAKE_FRAME_BYTES_MAX))


async def _read_handshake_frame(reader: asyncio.StreamReader) -> bytes:
    size = int.from_bytes(await reader.readexactly(FRAME_HEADER_BYTES), "big")
    if not 0 < size <= HANDSHAKE_FRAME_BYTES_MAX:
        raise ProtocolError(f"handshake frame of {size} bytes (limit "
                            f"{HANDSHAKE_FRAME_BYTES_MAX})")
    return await reader.readexactly(size)
