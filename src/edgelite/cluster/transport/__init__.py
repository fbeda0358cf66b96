"""PeerTransport: authenticated, bounded node-to-node messaging over asyncio streams.

One transport per node. It listens on the node's peer port, dials peers on demand, runs
the handshake of ``protocol/peer/handshake.py`` on every connection, and then moves
length-prefixed MessagePack frames (``protocol/peer``) both ways.

Contract for the member runtime:

- ``send(node_id, message) -> bool`` never blocks and never raises because a peer is
  down: the frame goes into the peer's bounded queue, or it is dropped and counted.
  Raft retransmits whatever matters. Queued frames are also dropped when a dial to the
  peer fails, so a peer that comes back never receives a backlog of stale messages.
- ``request(node_id, body, timeout_s)`` sends an ``RpcRequest`` and awaits the reply.
  ``PeerUnavailableError``: certainly not delivered; ``PeerNoReplyError`` (and its
  ``PeerTimeoutError``): maybe delivered, outcome unknown; ``PeerRemoteError``: the
  peer's handler failed.
- Inbound Raft messages and one-way cluster messages go to ``on_message(peer_id, msg)``
  (synchronously, in arrival order per connection); inbound requests to
  ``await on_request(peer_id, body)``, whose return value is the reply.

Connections: at most one per peer pair is kept. Either side dials when it has something
to send and no connection; an accepted connection is used for sending too. When both
dialled at once (two live connections), both sides keep the one dialled by the smaller
node id, so they agree without talking; a newer connection from the same dialer
replaces the older one (the dialer only redials when it believes the old one is dead).
Failed dials back off exponentially with jitter (``backoff_delay_s``).

Everything is bounded: frame size (a small limit until the handshake succeeded), queued
messages and bytes per peer, requests in flight both ways, concurrent handshakes, peers
learnt from inbound connections, handshake and connect time, idle time (keepalive pings
keep a healthy connection busy; a silent one is closed).

Modules: ``peer_transport`` (the class), ``connection`` (one stream, per-peer state,
the handshake over a stream), ``requests`` (outbound requests awaiting replies),
``limits`` (bounds, backoff, counters). See ``docs/design/peer-protocol.md``.
"""

from __future__ import annotations

from edgelite.cluster.transport.limits import PeerCounters, TransportLimits, backoff_delay_s
from edgelite.cluster.transport.peer_transport import (
    MessageHandler,
    PeerTransport,
    RequestHandler,
)

__all__ = [
    "MessageHandler",
    "PeerCounters",
    "PeerTransport",
    "RequestHandler",
    "TransportLimits",
    "backoff_delay_s",
]
