"""The cluster's own node-to-node messages (everything that is not a Raft message).

Each is a frozen msgspec Struct encoded as a MessagePack array whose first element is
its tag (``array_like=True``): compact, and decoded with one type-checked pass. Tags are
part of the wire format and never reused; Raft messages use tags 1-31 (``codec.py``),
these 32 and up.

Handshake (``handshake.py`` drives it): ``Hello`` both ways, then ``HelloAck`` both
ways; ``HelloReject`` says why a side gives up. After the handshake: Raft messages,
``Ping``/``Pong`` keepalives, and requests: ``RpcRequest`` carries a body and expects
exactly one ``RpcReply`` (a body) or ``RpcFailure`` with the same ``rpc_id``.
``ForwardRequest``/``ForwardResponse`` are the bodies the cluster uses to forward a
client's request to the leader; the transport carries ``payload`` and ``identity``
without looking inside.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

__all__ = [
    "CLUSTER_ID_CHARS_MAX",
    "NODE_ID_CHARS_MAX",
    "NONCE_BYTES_MAX",
    "NONCE_BYTES_MIN",
    "PEER_PROTOCOL_VERSION",
    "PROOF_BYTES",
    "ForwardRequest",
    "ForwardResponse",
    "Hello",
    "HelloAck",
    "HelloReject",
    "Ping",
    "Pong",
    "RpcBody",
    "RpcFailure",
    "RpcReply",
    "RpcRequest",
]

PEER_PROTOCOL_VERSION: Final = 1
NODE_ID_CHARS_MAX: Final = 255
CLUSTER_ID_CHARS_MAX: Final = 255
NONCE_BYTES_MIN: Final = 16
NONCE_BYTES_MAX: Final = 64
PROOF_BYTES: Final = 32  # HMAC-SHA256
REASON_CHARS_MAX: Final = 64
DETAIL_CHARS_MAX: Final = 1024

NodeIdText = Annotated[str, msgspec.Meta(min_length=1, max_length=NODE_ID_CHARS_MAX)]
ClusterIdText = Annotated[str, msgspec.Meta(min_length=1, max_length=CLUSTER_ID_CHARS_MAX)]
Nonce = Annotated[bytes, msgspec.Meta(min_length=NONCE_BYTES_MIN, max_length=NONCE_BYTES_MAX)]
Proof = Annotated[bytes, msgspec.Meta(min_length=PROOF_BYTES, max_length=PROOF_BYTES)]
Unsigned = Annotated[int, msgspec.Meta(ge=0)]


class Hello(msgspec.Struct, frozen=True, array_like=True, tag=32):
    """First message of each side. ``node_id`` is the sender, ``peer_id`` whom the
    sender believes it is talking to (the dialer: the node it dialled; the acceptor:
    the id the dialer claimed). ``nonce`` is fresh randomness for this connection."""

    protocol_version: Unsigned
    cluster_id: ClusterIdText
    node_id: NodeIdText
    peer_id: NodeIdText
    nonce: Nonce


class HelloAck(msgspec.Struct, frozen=True, array_like=True, tag=33):
    """HMAC-SHA256 proof that the sender knows the cluster secret, bound to both nonces,
    both node ids, the cluster id, the protocol version and the sender's role."""

    proof: Proof


class HelloReject(msgspec.Struct, frozen=True, array_like=True, tag=34):
    """The sender ends the handshake (or the connection). ``reason`` is a stable label."""

    reason: Annotated[str, msgspec.Meta(max_length=REASON_CHARS_MAX)]
    detail: Annotated[str, msgspec.Meta(max_length=DETAIL_CHARS_MAX)] = ""


class Ping(msgspec.Struct, frozen=True, array_like=True, tag=35):
    seq: Unsigned


class Pong(msgspec.Struct, frozen=True, array_like=True, tag=36):
    seq: Unsigned


class ForwardRequest(msgspec.Struct, frozen=True, array_like=True, tag=40):
    """A client request forwarded by a follower to the leader. ``identity`` is the
    caller's authenticated identity (the leader re-checks it); ``payload`` and
    ``headers`` are defined by the cluster layer."""

    request_id: int
    kind: str
    namespace: str
    identity: dict[str, Any]
    payload: bytes
    headers: dict[str, str]


class ForwardResponse(msgspec.Struct, frozen=True, array_like=True, tag=41):
    request_id: int
    status: int
    payload: bytes
    headers: dict[str, str]


RpcBody = ForwardRequest | ForwardResponse


class RpcRequest(msgspec.Struct, frozen=True, array_like=True, tag=48):
    """Asks the peer's request handler for one reply to ``body``."""

    rpc_id: Unsigned
    body: RpcBody


class RpcReply(msgspec.Struct, frozen=True, array_like=True, tag=49):
    rpc_id: Unsigned
    body: RpcBody


class RpcFailure(msgspec.Struct, frozen=True, array_like=True, tag=50):
    """The peer's handler failed, or the peer refused the request (``message`` says)."""

    rpc_id: Unsigned
    message: Annotated[str, msgspec.Meta(max_length=DETAIL_CHARS_MAX)]
