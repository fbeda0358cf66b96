"""Node-to-node protocol: frames, the message codec and the handshake (pure, sans-IO).

``cluster/transport.py`` moves the bytes. Modules: ``framing`` (length-prefixed
frames), ``messages`` (the cluster's own messages), ``codec`` (MessagePack for those and
every Raft message), ``handshake`` (mutual proof of the cluster secret). See
``docs/design/peer-protocol.md``.
"""

from __future__ import annotations

from edgelite.protocol.peer.codec import (
    CLUSTER_MESSAGE_TYPES,
    RAFT_MESSAGE_TYPES,
    ClusterMessage,
    PeerMessage,
    decode_peer_message,
    encode_peer_message,
)
from edgelite.protocol.peer.framing import (
    FRAME_BYTES_LIMIT,
    FRAME_HEADER_BYTES,
    FrameDecoder,
    encode_frame,
)
from edgelite.protocol.peer.handshake import (
    HANDSHAKE_FRAME_BYTES_MAX,
    NONCE_BYTES,
    SECRET_BYTES_MIN,
    Handshake,
    HandshakeFailure,
    HandshakeRole,
    HandshakeState,
    NonceCache,
    compute_proof,
)
from edgelite.protocol.peer.messages import (
    CLUSTER_ID_CHARS_MAX,
    NODE_ID_CHARS_MAX,
    NONCE_BYTES_MAX,
    NONCE_BYTES_MIN,
    PEER_PROTOCOL_VERSION,
    PROOF_BYTES,
    ForwardRequest,
    ForwardResponse,
    Hello,
    HelloAck,
    HelloReject,
    Ping,
    Pong,
    RpcBody,
    RpcFailure,
    RpcReply,
    RpcRequest,
)

__all__ = [
    "CLUSTER_ID_CHARS_MAX",
    "CLUSTER_MESSAGE_TYPES",
    "FRAME_BYTES_LIMIT",
    "FRAME_HEADER_BYTES",
    "HANDSHAKE_FRAME_BYTES_MAX",
    "NODE_ID_CHARS_MAX",
    "NONCE_BYTES",
    "NONCE_BYTES_MAX",
    "NONCE_BYTES_MIN",
    "PEER_PROTOCOL_VERSION",
    "PROOF_BYTES",
    "RAFT_MESSAGE_TYPES",
    "SECRET_BYTES_MIN",
    "ClusterMessage",
    "ForwardRequest",
    "ForwardResponse",
    "FrameDecoder",
    "Handshake",
    "HandshakeFailure",
    "HandshakeRole",
    "HandshakeState",
    "Hello",
    "HelloAck",
    "HelloReject",
    "NonceCache",
    "PeerMessage",
    "Ping",
    "Pong",
    "RpcBody",
    "RpcFailure",
    "RpcReply",
    "RpcRequest",
    "compute_proof",
    "decode_peer_message",
    "encode_frame",
    "encode_peer_message",
]
