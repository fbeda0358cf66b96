"""Every peer link of a cluster through one fault-injecting relay (no root needed).

Why not ``tests.support.faultproxy.FaultNetwork`` (one proxy per ordered pair of
nodes): a node's peer address is one address for everybody. Members learn each other's
*advertised* address from status queries and membership changes and overwrite what
``--bootstrap`` told them, so per-pair proxy ports would be bypassed a few seconds into
a run. Here each node advertises one relay port (``--peer-advertise``), every peer dials
that port, and the relay learns who is dialling from the first frame of the peer
handshake (``Hello`` carries the dialler's node id in clear: a MessagePack array
``[32, version, cluster, node_id, peer_id, nonce]`` behind a 4-byte length). Rules are
then per *directed* pair of nodes, whichever side dialled the connection that carries
the bytes.

A cut direction is *held*, not dropped: the relay stops reading, so the sender's socket
buffers fill and its writes stall, and nothing (not even a FIN) reaches the other side
until the cut heals. That is what a TCP connection does across a real partition
(retransmissions into the void); dropping bytes mid-stream would instead corrupt the
framing, which no real network does. Connections dialled during a cut are accepted and
held the same way, so the dialler sees a handshake timeout, as behind a firewall that
drops packets. ``slow(node, ms)`` adds latency to every chunk to or from a node.

All methods are synchronous and thread-safe; the relay runs on its own asyncio loop in a
daemon thread (``LoopThread`` of the fault proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import threading
from collections.abc import Iterable

import msgspec

from tests.support.faultproxy import LoopThread

_CHUNK_BYTES = 64 * 1024
_HELLO_BYTES_MAX = 4096
_HELLO_TAG = 32
_HELLO_TIMEOUT_S = 30.0
_UNKNOWN = "?"


class PeerRouter:
    """One relay port per node; directed cuts, partitions and latency between nodes."""

    def __init__(self) -> None:
        self._thread = LoopThread("peer-router")
        self._lock = threading.Lock()
        self._cut: set[tuple[str, str]] = set()
        self._delay_s: dict[str, float] = {}
        self._servers: dict[str, asyncio.Server] = {}
        self._targets: dict[str, int] = {}
        self._ports: dict[str, int] = {}
        self._connections: set[_Relayed] = set()
        self._changed: asyncio.Condition | None = None
        self.connections_accepted = 0

    # ---- synchronous API ---------------------------------------------------------------

    def route(self, node_id: str, target_port: int) -> int:
        """The relay port other nodes must dial to reach ``node_id`` (created once)."""
        with self._lock:
            self._targets[node_id] = target_port
            if node_id in self._ports:
                return self._ports[node_id]
        port = self._thread.call(self._listen(node_id))
        with self._lock:
            self._ports[node_id] = port
        return port

    def cut(self, a: str, b: str) -> None:
        """One way: bytes from ``a`` to ``b`` stop (``b`` to ``a`` still flow)."""
        self._update(add={(a, b)})

    def partition(self, *groups: Iterable[str]) -> None:
        """Replace every cut by: nodes in different groups cannot talk (both ways).
        Nodes named in no group keep talking to everybody."""
        sets = [set(g) for g in groups]
        pairs = {(a, b) for g, h in itertools.permutations(sets, 2) for a in g for b in h}
        self._update(replace=pairs)

    def isolate(self, node: str, others: Iterable[str]) -> None:
        self.partition([node], [n for n in others if n != node])

    def heal(self) -> None:
        """End every cut (latency stays until ``slow(node, 0)``)."""
        self._update(replace=set())

    def slow(self, node: str, ms: float) -> None:
        with self._lock:
            if ms > 0:
                self._delay_s[node] = ms / 1000.0
            else:
                self._delay_s.pop(node, None)
        self._notify()

    @property
    def cuts(self) -> frozenset[tuple[str, str]]:
        with self._lock:
            return frozenset(self._cut)

    def stop(self) -> None:
        self._thread.call(self._stop())
        self._thread.close()

    # ---- rules ---------------------------------------------------------------------------

    def _update(self, add: set[tuple[str, str]] | None = None,
                replace: set[tuple[str, str]] | None = None) -> None:
        with self._lock:
            if replace is not None:
                self._cut = set(replace)
            if add:
                self._cut |= add
        self._notify()

    def _notify(self) -> None:
        async def notify() -> None:
            assert self._changed is not None
            async with self._changed:
                self._changed.notify_all()

        if self._changed is not None:
            self._thread.call(notify())

    def _open(self, source: str, target: str) -> bool:
        with self._lock:
            return (source, target) not in self._cut

    def _delay(self, source: str, target: str) -> float:
        with self._lock:
            return self._delay_s.get(source, 0.0) + self._delay_s.get(target, 0.0)

    async def _wait_open(self, source: str, target: str) -> None:
        assert self._changed is not None
        if self._open(source, target):
            return
        async with self._changed:
            await self._changed.wait_for(lambda: self._open(source, target))

    # ---- on the relay loop -----------------------------------------------------------------

    async def _listen(self, node_id: str) -> int:
        if self._changed is None:
            self._changed = asyncio.Condition()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._on_dial(node_id, reader, writer)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self._servers[node_id] = server
        return int(server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        for server in self._servers.values():
            server.close()
        for connection in list(self._connections):
            connection.abort()
        tasks = [t for c in self._connections for t in c.tasks]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._connections.clear()

    async def _on_dial(self, target: str, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        try:
            hello = await asyncio.wait_for(_read_frame(reader), _HELLO_TIMEOUT_S)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, TimeoutError,
                ValueError):
            writer.transport.abort()
            return
        source = _dialler_of(hello)
        with self._lock:
            port = self._targets[target]
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        except (OSError, TimeoutError):
            writer.transport.abort()  # the node is down: the dialler sees a reset
            return
        relayed = _Relayed((reader, writer), upstream)
        self._connections.add(relayed)
        loop = asyncio.get_running_loop()
        relayed.tasks = [
            loop.create_task(self._pump(reader, upstream[1], source, target, hello)),
            loop.create_task(self._pump(upstream[0], writer, target, source, b"")),
        ]
        await asyncio.wait(relayed.tasks, return_when=asyncio.FIRST_COMPLETED)
        relayed.abort()
        await asyncio.gather(*relayed.tasks, return_exceptions=True)
        self._connections.discard(relayed)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    source: str, target: str, first: bytes) -> None:
        data = first
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                if data:
                    delay = self._delay(source, target)
                    if delay:
                        await asyncio.sleep(delay)
                    await self._wait_open(source, target)  # a cut holds this chunk
                    writer.write(data)
                    await writer.drain()
                await self._wait_open(source, target)  # stop reading: buffers fill
                data = await reader.read(_CHUNK_BYTES)
                if not data:
                    break
            await self._wait_open(source, target)  # the FIN waits for the cut to heal
            writer.close()


class _Relayed:
    def __init__(self, client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.writers = (client[1], upstream[1])
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(4)
    (size,) = struct.unpack(">I", head)
    if not 0 < size <= _HELLO_BYTES_MAX:
        raise ValueError(f"first frame of {size} bytes is no handshake")
    return head + await reader.readexactly(size)


def _dialler_of(frame: bytes) -> str:
    """The node id in a peer ``Hello`` frame (``?`` if the frame is something else)."""
    try:
        message = msgspec.msgpack.decode(frame[4:])
    except msgspec.DecodeError:
        return _UNKNOWN
    if isinstance(message, list) and len(message) >= 4 and message[0] == _HELLO_TAG \
            and isinstance(message[3], str):
        return message[3]
    return _UNKNOWN


__all__ = ["PeerRouter"]
