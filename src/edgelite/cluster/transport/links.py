"""PeerLinks: the connections half of the transport.

It owns the listening socket, one ``PeerLink`` per known peer (address, bounded queue,
current connection, counters), dialling on demand with backoff, accepting, the
handshake, the one-connection-per-pair rule, the read and write loops, and keepalive.
It does not interpret frames: every frame read is handed to ``on_frame``; requests that
die in a queue are reported through ``on_request_dropped``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

from edgelite.cluster.transport.connection import (
    NOT_A_REQUEST,
    Connection,
    PeerLink,
    run_handshake,
)
from edgelite.cluster.transport.limits import PeerCounters, TransportLimits, backoff_delay_s
from edgelite.errors import ConfigError, HandshakeError, ProtocolError
from edgelite.protocol.peer import (
    FRAME_HEADER_BYTES,
    NONCE_BYTES,
    Handshake,
    HandshakeRole,
    NonceCache,
    PeerMessage,
    Ping,
    encode_frame,
    encode_peer_message,
)

__all__ = ["FrameHandler", "PeerLinks", "RequestDropHandler"]

log = logging.getLogger("edgelite.cluster.transport")

FrameHandler = Callable[[Connection, bytes], None]  # may raise ProtocolError: closes it
RequestDropHandler = Callable[[int, str, str], None]  # rpc id, peer id, reason

_READ_BYTES = 256 * 1024
_WARN_INTERVAL_S = 10.0


class PeerLinks:
    """Invariants: ``peers[id].connection`` is None or an authenticated, open connection
    to ``id``; at most one such connection per peer; every task this object starts is
    in ``_tasks`` until it ends."""

    def __init__(self, *, node_id: str, cluster_id: str, secret: bytes,
                 limits: TransportLimits, rng: random.Random,
                 nonce_source: Callable[[int], bytes], on_frame: FrameHandler,
                 on_request_dropped: RequestDropHandler,
                 server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.limits = limits
        self.peers: dict[str, PeerLink] = {}
        self.running = False
        self.unidentified = PeerCounters()  # failures before a peer proved who it is
        self.refused_connections = 0
        self.handshakes_inflight = 0
        self._secret = secret
        self._rng = rng
        self._nonce_source = nonce_source
        self._on_frame = on_frame
        self._on_request_dropped = on_request_dropped
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._seen_nonces = NonceCache(limits.seen_nonces_max)
        self._ping_seq = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._warned_at: dict[str, float] = {}

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        tls: dict[str, Any] = {}
        if self._server_ssl is not None:
            tls = {"ssl": self._server_ssl,
                   "ssl_handshake_timeout": self.limits.handshake_timeout_s}
        self._server = await asyncio.start_server(self._on_inbound, host, port,
                                                  limit=_READ_BYTES, **tls)
        self.running = True
        for peer in self.peers.values():
            peer.task = self.spawn(self._run_link(peer))
        self.spawn(self._keepalive())

    async def stop(self) -> None:
        self.running = False
        if self._server is not None:
            self._server.close()
        for peer in self.peers.values():
            if peer.connection is not None:
                peer.connection.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def listen_address(self) -> tuple[str, int]:
        assert self._server is not None and self._server.sockets, "transport not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("peer transport task failed node=%s", self.node_id,
                      exc_info=task.exception())

    # ---- membership ------------------------------------------------------------------

    def set_peer(self, node_id: str, address: tuple[str, int]) -> None:
        if node_id == self.node_id:
            raise ConfigError(f"node {node_id} cannot be its own peer")
        peer = self.peers.get(node_id)
        if peer is None:
            self._add_peer(node_id, address)
            return
        if peer.address == address:
            return
        peer.address = address
        peer.failures = 0
        if peer.connection is not None and peer.connection.dialled:
            self.connection_lost(peer.connection, "peer address changed")
        peer.changed.set()
        peer.wakeup.set()

    def remove_peer(self, node_id: str) -> PeerLink | None:
        peer = self.peers.pop(node_id, None)
        if peer is not None:
            if peer.task is not None:
                peer.task.cancel()
            if peer.connection is not None:
                peer.connection.close()
        return peer

    def _add_peer(self, node_id: str, address: tuple[str, int] | None) -> PeerLink:
        peer = PeerLink(node_id, address)
        self.peers[node_id] = peer
        if self.running:
            peer.task = self.spawn(self._run_link(peer))
        return peer

    # ---- queues ----------------------------------------------------------------------

    def enqueue(self, peer: PeerLink, message: PeerMessage,
                rpc_id: int = NOT_A_REQUEST) -> str | None:
        """Queue one frame; the reason it was dropped (and counted), or None."""
        payload = encode_peer_message(message)
        limits = self.limits
        size = len(payload)
        if size > limits.frame_bytes_max:
            peer.counters.dropped += 1
            self.warn("oversized", "peer message dropped node=%s peer=%s type=%s bytes=%d "
                      "frame_bytes_max=%d", self.node_id, peer.node_id,
                      type(message).__name__, len(payload), limits.frame_bytes_max)
            return (f"{type(message).__name__} of {len(payload)} bytes exceeds "
                    f"frame_bytes_max={limits.frame_bytes_max}")
        frame = size.to_bytes(FRAME_HEADER_BYTES, "big") + payload  # encode_frame, inlined
        if (len(peer.queue) >= limits.queue_messages_max
                or peer.queue_bytes + len(frame) > limits.queue_bytes_max):
            peer.counters.dropped += 1
            return (f"the queue to {peer.node_id} is full ({len(peer.queue)} messages, "
                    f"{peer.queue_bytes} bytes)")
        peer.queue.append((frame, rpc_id))
        peer.queue_bytes += len(frame)
        peer.wakeup.set()
        return None

    def _drop_queue(self, peer: PeerLink, reason: str) -> None:
        peer.counters.dropped += len(peer.queue)
        dropped_requests = [rpc_id for _frame, rpc_id in peer.queue if rpc_id != NOT_A_REQUEST]
        peer.queue.clear()
        peer.queue_bytes = 0
        for rpc_id in dropped_requests:
            self._on_request_dropped(rpc_id, peer.node_id, reason)

    # ---- per-peer link task: dial on demand, write the queue ---------------------------

    async def _run_link(self, peer: PeerLink) -> None:
        while True:
            peer.wakeup.clear()
            connection = peer.connection
            if connection is not None:
                if peer.queue:
                    await self._write_queued(peer, connection)
                else:
                    await peer.wakeup.wait()
            elif peer.queue and peer.address is not None:
                await self._dial(peer, peer.address)
            else:
                await peer.wakeup.wait()

    async def _write_queued(self, peer: PeerLink, connection: Connection) -> None:
        batch: list[bytes] = []
        size = 0
        while peer.queue and size < self.limits.write_batch_bytes_max:
            frame, _rpc_id = peer.queue.popleft()
            batch.append(frame)
            size += len(frame)
        peer.queue_bytes -= size
        connection.writer.write(batch[0] if len(batch) == 1 else b"".join(batch))
        peer.counters.sent += len(batch)
        peer.counters.bytes_sent += size
        connection.last_sent = asyncio.get_running_loop().time()
        try:
            await connection.writer.drain()
        except (ConnectionError, OSError) as exc:
            self.connection_lost(connection, f"write failed: {exc}")

    async def _dial(self, peer: PeerLink, address: tuple[str, int]) -> None:
        delay = backoff_delay_s(peer.failures, initial_s=self.limits.backoff_initial_s,
                                max_s=self.limits.backoff_max_s, rng=self._rng)
        if delay > 0:
            peer.changed.clear()
            try:
                async with asyncio.timeout(delay):
                    await peer.changed.wait()  # an inbound connection ends the wait
            except TimeoutError:
                pass
            if peer.connection is not None or peer.address != address:
                return
        try:
            async with asyncio.timeout(self.limits.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    *address, limit=_READ_BYTES, ssl=self._client_ssl)
        except (OSError, TimeoutError) as exc:
            peer.counters.connect_failures += 1
            self._dial_failed(peer, f"connect to {address[0]}:{address[1]} failed: "
                              f"{exc or type(exc).__name__}")
            return
        connection = await self._authenticate(reader, writer, HandshakeRole.DIALER, peer)
        if connection is None:
            self._dial_failed(peer, "handshake failed")
        elif self._adopt(connection):
            self.spawn(self._read_loop(connection))

    def _dial_failed(self, peer: PeerLink, reason: str) -> None:
        # Frames queued for an unreachable peer would be stale by the time it is back.
        peer.failures += 1
        self._drop_queue(peer, f"peer unreachable ({reason})")
        log.debug("peer dial failed node=%s peer=%s failures=%d reason=%s",
                  self.node_id, peer.node_id, peer.failures, reason)

    # ---- connections -----------------------------------------------------------------

    async def _on_inbound(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if not self.running or \
                    self.handshakes_inflight >= self.limits.handshakes_inflight_max:
                self.refused_connections += 1
                writer.transport.abort()
                return
            self.handshakes_inflight += 1
            try:
                connection = await self._authenticate(reader, writer, HandshakeRole.ACCEPTOR)
            finally:
                self.handshakes_inflight -= 1
            if connection is not None and self._adopt(connection):
                await self._read_loop(connection)
        except asyncio.CancelledError:
            # End normally: on Python 3.11 asyncio's own done-callback for this task calls
            # task.exception(), which raises for a cancelled task and logs a spurious
            # "Exception in callback". Only stop() cancels this task; it wants it over.
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            role: HandshakeRole, peer: PeerLink | None = None
                            ) -> Connection | None:
        """Run the handshake; the connection if it succeeded, else None (closed, counted)."""
        handshake = Handshake(
            role, secret=self._secret, cluster_id=self.cluster_id, node_id=self.node_id,
            nonce=self._nonce_source(NONCE_BYTES),
            expected_peer_id=peer.node_id if peer is not None else None,
            seen_nonces=self._seen_nonces if role is HandshakeRole.ACCEPTOR else None)
        try:
            async with asyncio.timeout(self.limits.handshake_timeout_s):
                await run_handshake(handshake, reader, writer)
        except (HandshakeError, ProtocolError, OSError, TimeoutError, EOFError) as exc:
            self._handshake_failed(handshake, writer, peer, exc)
            return None
        except BaseException:
            writer.transport.abort()
            raise
        assert handshake.peer_id is not None
        return Connection(handshake.peer_id, reader, writer,
                          dialled=role is HandshakeRole.DIALER,
                          frame_bytes_max=self.limits.frame_bytes_max,
                          now=asyncio.get_running_loop().time())

    def _handshake_failed(self, handshake: Handshake, writer: asyncio.StreamWriter,
                          peer: PeerLink | None, exc: BaseException) -> None:
        if isinstance(exc, HandshakeError):
            reason = exc.reason
        elif isinstance(exc, ProtocolError):
            reason = "malformed"
        else:
            reason = "timeout" if isinstance(exc, TimeoutError) else "closed"
        reject = handshake.reject_message()
        if reject is not None and not writer.is_closing():
            writer.write(encode_frame(encode_peer_message(reject)))
        writer.close()  # a graceful close, so the peer gets the reject
        if peer is None:  # count under the claimed id only if it is a known peer
            peer = self.peers.get(handshake.claimed_peer_id or "")
        (peer.counters if peer is not None else self.unidentified).handshake_failures += 1
        self.warn(f"handshake-{reason}", "peer handshake failed node=%s role=%s peer=%s "
                  "reason=%s detail=%s", self.node_id, handshake.role.value,
                  handshake.claimed_peer_id or (peer.node_id if peer else "?"), reason,
                  str(exc) or type(exc).__name__)

    def _adopt(self, connection: Connection) -> bool:
        """Make ``connection`` its peer's connection, or close it (package docstring)."""
        if not self.running:
            connection.close()
            return False
        peer = self.peers.get(connection.peer_id)
        if peer is None:
            if len(self.peers) >= self.limits.peers_max:
                self.warn("peers-max", "inbound peer refused node=%s peer=%s peers_max=%d",
                          self.node_id, connection.peer_id, self.limits.peers_max)
                connection.close()
                return False
            peer = self._add_peer(connection.peer_id, None)
        current = peer.connection
        if current is not None:
            smaller_dials = self.node_id < connection.peer_id
            if current.dialled != connection.dialled and connection.dialled != smaller_dials:
                connection.close()  # simultaneous dial: the smaller id's connection wins
                return False
            self.connection_lost(current, "replaced by a newer connection")
        if current is None and peer.counters.connects > 0:
            peer.counters.reconnects += 1  # not when it replaced a live one
        peer.connection = connection
        peer.counters.connects += 1
        peer.changed.set()
        peer.wakeup.set()
        log.info("peer connected node=%s peer=%s direction=%s", self.node_id, peer.node_id,
                 "out" if connection.dialled else "in")
        return True

    def connection_lost(self, connection: Connection, reason: str) -> None:
        """Close ``connection``; if it was its peer's, the link task may redial."""
        connection.close()
        peer = self.peers.get(connection.peer_id)
        if peer is None or peer.connection is not connection:
            return
        peer.connection = None
        now = asyncio.get_running_loop().time()
        short_lived = now - connection.established_at < self.limits.backoff_max_s
        peer.failures = peer.failures + 1 if short_lived else 0
        if peer.address is None:  # nobody will dial it: what is queued would go stale
            self._drop_queue(peer, "peer disconnected (inbound-only, no address to dial)")
        peer.changed.set()
        peer.wakeup.set()
        log.info("peer disconnected node=%s peer=%s reason=%s", self.node_id, peer.node_id,
                 reason)

    async def _read_loop(self, connection: Connection) -> None:
        reason = "closed by this node"
        loop = asyncio.get_running_loop()
        try:
            while not connection.closed:
                data = await connection.reader.read(_READ_BYTES)
                if not data:
                    connection.decoder.check_eof()
                    reason = "closed by peer"
                    break
                connection.last_received = loop.time()
                peer = self.peers.get(connection.peer_id)
                if peer is not None:
                    peer.counters.bytes_received += len(data)
                for frame in connection.decoder.feed(data):
                    if connection.closed:
                        break
                    self._on_frame(connection, frame)
        except ProtocolError as exc:
            reason = f"protocol error: {exc}"
            peer = self.peers.get(connection.peer_id)
            (peer.counters if peer is not None else self.unidentified).protocol_errors += 1
            self.warn("protocol-error", "peer protocol error node=%s peer=%s detail=%s",
                      self.node_id, connection.peer_id, exc)
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc}"
        finally:
            self.connection_lost(connection, reason)

    async def _keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.limits.ping_interval_s)
            now = loop.time()
            for peer in list(self.peers.values()):
                connection = peer.connection
                if connection is None:
                    continue
                if now - connection.last_received > self.limits.idle_timeout_s:
                    self.connection_lost(connection, f"nothing received for "
                                         f"{self.limits.idle_timeout_s} s")
                elif now - connection.last_sent >= self.limits.ping_interval_s and \
                        not peer.queue:
                    self.enqueue(peer, Ping(next(self._ping_seq)))

    def warn(self, key: str, message: str, *args: Any) -> None:
        """Log a warning at most once per ``_WARN_INTERVAL_S`` per key (a flood of bad
        connections must not flood the log); the rest go to DEBUG."""
        now = asyncio.get_running_loop().time()
        if now - self._warned_at.get(key, -_WARN_INTERVAL_S) >= _WARN_INTERVAL_S:
            self._warned_at[key] = now
            log.warning(message, *args)
        else:
            log.debug(message, *args)
