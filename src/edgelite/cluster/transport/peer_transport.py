"""PeerTransport: messages and requests over ``PeerLinks`` (see the package docstring)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import secrets
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from edgelite.cluster.transport.connection import Connection, PeerLink
from edgelite.cluster.transport.limits import TransportLimits
from edgelite.cluster.transport.links import PeerLinks
from edgelite.cluster.transport.requests import PendingRequests
from edgelite.errors import (
    ConfigError,
    PeerNoReplyError,
    PeerTimeoutError,
    PeerUnavailableError,
    ProtocolError,
)
from edgelite.protocol.peer import (
    CLUSTER_ID_CHARS_MAX,
    NODE_ID_CHARS_MAX,
    RAFT_MESSAGE_TYPES,
    SECRET_BYTES_MIN,
    ForwardRequest,
    ForwardResponse,
    Hello,
    HelloAck,
    HelloReject,
    PeerMessage,
    Ping,
    Pong,
    RpcBody,
    RpcFailure,
    RpcReply,
    RpcRequest,
    decode_peer_message,
    encode_peer_message,
)

__all__ = ["MessageHandler", "PeerTransport", "RequestHandler"]

log = logging.getLogger("edgelite.cluster.transport")

MessageHandler = Callable[[str, PeerMessage], None]
RequestHandler = Callable[[str, RpcBody], Awaitable[RpcBody]]

_RAFT_TYPES = frozenset(RAFT_MESSAGE_TYPES)
_RPC_BODY_TYPES = (ForwardRequest, ForwardResponse)
_FAILURE_DETAIL_CHARS = 1000


class PeerTransport:
    """One node's peer messaging. Use from one asyncio loop; ``send``, ``set_peer`` and
    ``remove_peer`` are synchronous, ``start``, ``stop`` and ``request`` are awaited.

    ``limits`` (or keyword overrides of its fields, e.g. ``frame_bytes_max=...``) bound
    everything; ``rng`` drives the backoff jitter (seed it in tests); ``nonce_source``
    supplies handshake nonces. ``server_ssl`` / ``client_ssl`` put TLS under every
    connection (give both, with client certificates required, for mTLS); the secret
    handshake still runs inside it. Without them the stream after the handshake is
    neither encrypted nor integrity-protected.
    """

    def __init__(
        self,
        node_id: str,
        secret: bytes,
        listen_host: str,
        listen_port: int,
        on_message: MessageHandler,
        *,
        on_request: RequestHandler | None = None,
        cluster_id: str = "edgelite",
        limits: TransportLimits | None = None,
        rng: random.Random | None = None,
        nonce_source: Callable[[int], bytes] = secrets.token_bytes,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        **limit_overrides: Any,
    ) -> None:
        if not 0 < len(node_id) <= NODE_ID_CHARS_MAX:
            raise ConfigError(f"peer transport node id {node_id!r} is empty or too long")
        if not 0 < len(cluster_id) <= CLUSTER_ID_CHARS_MAX:
            raise ConfigError(f"cluster id {cluster_id!r} is empty or too long")
        if len(secret) < SECRET_BYTES_MIN:
            raise ConfigError(f"the cluster secret must be at least {SECRET_BYTES_MIN} bytes")
        self.node_id = node_id
        self.limits = dataclasses.replace(limits or TransportLimits(), **limit_overrides)
        self._listen = (listen_host, listen_port)
        self._on_message = on_message
        self._on_request = on_request
        self._pending = PendingRequests()
        self._links = PeerLinks(
            node_id=node_id, cluster_id=cluster_id, secret=secret, limits=self.limits,
            rng=rng or random.Random(), nonce_source=nonce_source, on_frame=self._dispatch,
            on_request_dropped=self._request_dropped, server_ssl=server_ssl,
            client_ssl=client_ssl)
        self._started = False
        self._stopped = False
        self._inbound_requests = 0
        self._dropped_unroutable = 0

    # ---- lifecycle and membership ----------------------------------------------------

    async def start(self) -> None:
        """Listen on the peer port; dial known peers when there is something to send."""
        if self._started:
            raise RuntimeError("a PeerTransport starts once")
        self._started = True
        await self._links.start(*self._listen)
        host, port = self.listen_address
        log.info("peer transport listening node=%s host=%s port=%d", self.node_id, host, port)

    async def stop(self) -> None:
        """Close every connection, end every task, fail every pending request."""
        if self._stopped:
            return
        self._stopped = True
        await self._links.stop()
        for rpc_id in self._pending.ids_for():
            self._pending.fail(rpc_id, PeerNoReplyError(
                f"request {rpc_id} abandoned: the peer transport stopped",
                peer_id=self._pending.peer_of(rpc_id)))
        await asyncio.sleep(0)  # let aborted sockets run their connection_lost
        log.info("peer transport stopped node=%s", self.node_id)

    @property
    def listen_address(self) -> tuple[str, int]:
        """The bound (host, port): useful when started on port 0."""
        return self._links.listen_address

    def set_peer(self, node_id: str, host: str, port: int) -> None:
        """Add a peer, or change its address (which drops a connection we dialled)."""
        self._links.set_peer(node_id, (host, port))

    def remove_peer(self, node_id: str) -> None:
        """Forget a peer: close its connection, drop its queue, fail its requests."""
        if self._links.remove_peer(node_id) is None:
            return
        for rpc_id in self._pending.ids_for(node_id):
            self._pending.fail(rpc_id, PeerNoReplyError(
                f"request {rpc_id} to {node_id} abandoned: the peer was removed",
                peer_id=node_id))

    def peers(self) -> dict[str, tuple[str, int] | None]:
        """Known peers and their addresses (None: known from an inbound connection)."""
        return {node_id: link.address for node_id, link in self._links.peers.items()}

    def is_connected(self, node_id: str) -> bool:
        link = self._links.peers.get(node_id)
        return link is not None and link.connection is not None

    # ---- sending ---------------------------------------------------------------------

    def send(self, node_id: str, message: PeerMessage) -> bool:
        """Queue ``message`` for ``node_id``; False if it was dropped (and counted).

        Never blocks. Raises ProtocolError only for a message that cannot be encoded.
        """
        link = self._links.peers.get(node_id)
        if link is None or not self._links.running:
            self._dropped_unroutable += 1
            return False
        return self._links.enqueue(link, message) is None

    async def request(self, node_id: str, body: RpcBody, timeout_s: float) -> RpcBody:
        """Send ``body`` as a request; return the reply body.

        Raises PeerUnavailableError (not sent), PeerTimeoutError (sent or maybe sent,
        no reply in time), PeerNoReplyError (peer removed or transport stopped while
        waiting) or PeerRemoteError (the peer's handler failed).
        """
        if not isinstance(body, _RPC_BODY_TYPES):
            raise TypeError(f"{type(body).__name__} cannot be sent as a peer request")
        link = self._links.peers.get(node_id)
        if link is None or not self._links.running:
            why = "unknown peer" if self._links.running else "the transport is not running"
            raise PeerUnavailableError(f"request to {node_id} not sent: {why}",
                                       peer_id=node_id)
        if len(self._pending) >= self.limits.requests_inflight_max:
            raise PeerUnavailableError(
                f"request to {node_id} not sent: {len(self._pending)} requests in flight "
                f"(requests_inflight_max={self.limits.requests_inflight_max})", peer_id=node_id)
        rpc_id, future = self._pending.open(node_id)
        try:
            refusal = self._links.enqueue(link, RpcRequest(rpc_id, body), rpc_id=rpc_id)
            if refusal is not None:
                raise PeerUnavailableError(f"request {rpc_id} to {node_id} not sent: {refusal}",
                                           peer_id=node_id)
            try:
                async with asyncio.timeout(timeout_s):
                    return await future
            except TimeoutError:
                raise PeerTimeoutError(
                    f"no reply from {node_id} to request {rpc_id} within {timeout_s} s; "
                    "the peer may have processed it", peer_id=node_id) from None
        finally:
            self._pending.close(rpc_id)

    def _request_dropped(self, rpc_id: int, peer_id: str, reason: str) -> None:
        self._pending.fail(rpc_id, PeerUnavailableError(
            f"request {rpc_id} to {peer_id} not sent: {reason}", peer_id=peer_id))

    # ---- receiving -------------------------------------------------------------------

    def _dispatch(self, connection: Connection, frame: bytes) -> None:
        message = decode_peer_message(frame)
        link = self._links.peers.get(connection.peer_id)
        if link is None:
            return  # removed while its frames were still arriving
        link.counters.received += 1
        kind = type(message)
        if kind in _RAFT_TYPES:
            _check_addressing(connection, message, self.node_id)
            self._deliver(link, message)
        elif isinstance(message, Ping):
            self._links.enqueue(link, Pong(message.seq))
        elif isinstance(message, Pong):
            pass  # its arrival already refreshed the connection's last_received
        elif isinstance(message, RpcRequest):
            self._serve(link, message)
        elif isinstance(message, RpcReply | RpcFailure):
            self._pending.resolve(link.node_id, message)
        elif isinstance(message, HelloReject):
            self._links.connection_lost(
                connection, f"peer rejected us: {message.reason} {message.detail}")
        elif isinstance(message, Hello | HelloAck):
            raise ProtocolError(f"{kind.__name__} received after the handshake")
        else:
            self._deliver(link, message)

    def _deliver(self, link: PeerLink, message: PeerMessage) -> None:
        try:
            self._on_message(link.node_id, message)
        except Exception:
            link.counters.handler_errors += 1
            log.exception("peer message handler failed node=%s peer=%s type=%s",
                          self.node_id, link.node_id, type(message).__name__)

    def _serve(self, link: PeerLink, request: RpcRequest) -> None:
        if self._on_request is None:
            self._links.enqueue(link, RpcFailure(request.rpc_id, "this node serves no "
                                                 "requests"))
        elif self._inbound_requests >= self.limits.inbound_requests_inflight_max:
            self._links.enqueue(link, RpcFailure(
                request.rpc_id, f"overloaded: {self._inbound_requests} requests in progress"))
        else:
            self._inbound_requests += 1
            self._links.spawn(self._serve_one(link.node_id, request))

    async def _serve_one(self, peer_id: str, request: RpcRequest) -> None:
        assert self._on_request is not None
        try:
            try:
                body = await self._on_request(peer_id, request.body)
                if not isinstance(body, _RPC_BODY_TYPES):
                    raise TypeError(f"request handler returned {type(body).__name__}")
                reply: RpcReply | RpcFailure = RpcReply(request.rpc_id, body)
                encode_peer_message(reply)  # fail here, as a handler error, if unencodable
            except Exception as exc:
                log.exception("peer request handler failed node=%s peer=%s rpc_id=%d",
                              self.node_id, peer_id, request.rpc_id)
                text = f"{type(exc).__name__}: {exc}"[:_FAILURE_DETAIL_CHARS]
                reply = RpcFailure(request.rpc_id, text)
            link = self._links.peers.get(peer_id)
            if link is not None and self._links.running:
                self._links.enqueue(link, reply)
        finally:
            self._inbound_requests -= 1

    # ---- metrics ---------------------------------------------------------------------

    def peer_metrics(self) -> dict[str, dict[str, int]]:
        """Counters and gauges per peer, for ``/metrics``."""
        return {
            node_id: {**dataclasses.asdict(link.counters),
                      "queue_messages": len(link.queue), "queue_bytes": link.queue_bytes,
                      "connected": int(link.connection is not None)}
            for node_id, link in self._links.peers.items()
        }

    def transport_metrics(self) -> dict[str, int]:
        """Totals that belong to no known peer, and gauges of the whole transport."""
        links = self._links
        return {
            "handshake_failures_unidentified": links.unidentified.handshake_failures,
            "protocol_errors_unidentified": links.unidentified.protocol_errors,
            "connections_refused": links.refused_connections,
            "dropped_unroutable": self._dropped_unroutable,
            "requests_inflight": len(self._pending),
            "inbound_requests_inflight": self._inbound_requests,
            "handshakes_inflight": links.handshakes_inflight,
            "peers": len(links.peers),
        }


def _check_addressing(connection: Connection, message: Any, node_id: str) -> None:
    # A Raft message must come from the node that authenticated this connection.
    if message.from_id != connection.peer_id or message.to_id != node_id:
        raise ProtocolError(
            f"{type(message).__name__} from {message.from_id!r} to {message.to_id!r} "
            f"arrived on the connection between {connection.peer_id!r} and {node_id!r}")
