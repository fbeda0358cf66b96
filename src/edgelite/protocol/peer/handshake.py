"""Mutual authentication of a node-to-node connection with a shared cluster secret.

Sans-IO: :class:`Handshake` takes the messages the peer sent and returns the messages
to send back; the transport moves the bytes and supplies the randomness (nonces).

The exchange (D = the node that dialled, A = the node that accepted)::

    D -> A  Hello(version, cluster, node=D, peer=A, nonce_d)
    A -> D  Hello(version, cluster, node=A, peer=D, nonce_a)
    D -> A  HelloAck(proof_d)      proof_d = HMAC(secret, "dialer"   | transcript)
    A -> D  HelloAck(proof_a)      proof_a = HMAC(secret, "acceptor" | transcript)

``transcript`` is the protocol version, the cluster id, both node ids and both nonces,
each length-prefixed so no two different transcripts share bytes. Why this shape:

- Each side's proof covers the *other* side's fresh nonce, so a recorded proof is
  useless on any other connection (replay); the role label stops a proof from being
  reflected back at its author.
- The acceptor verifies D's proof before it sends any proof of its own, so a stranger
  without the secret never obtains an HMAC computed by an acceptor.
- The dialer checks that the acceptor is the node it meant to dial, and the acceptor
  that the dialer dialled *it*: a node reachable at a stale or swapped address is
  refused rather than silently talked to under the wrong name.
- Proofs are compared with ``hmac.compare_digest`` (constant time).

The handshake authenticates who is at each end when the connection starts; it does not
protect the bytes that follow (no per-frame MAC or encryption): run the peer port on a
private network, or put TLS underneath.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections import OrderedDict
from typing import Final, NoReturn

from edgelite.errors import HandshakeError
from edgelite.protocol.peer.codec import PeerMessage
from edgelite.protocol.peer.messages import (
    CLUSTER_ID_CHARS_MAX,
    NODE_ID_CHARS_MAX,
    NONCE_BYTES_MAX,
    NONCE_BYTES_MIN,
    PEER_PROTOCOL_VERSION,
    Hello,
    HelloAck,
    HelloReject,
)

__all__ = [
    "HANDSHAKE_FRAME_BYTES_MAX",
    "NONCE_BYTES",
    "SECRET_BYTES_MIN",
    "Handshake",
    "HandshakeFailure",
    "HandshakeRole",
    "HandshakeState",
    "NonceCache",
    "compute_proof",
]

NONCE_BYTES: Final = 32
SECRET_BYTES_MIN: Final = 16
# Handshake frames are tiny; an unauthenticated peer gets this limit, not the big one.
HANDSHAKE_FRAME_BYTES_MAX: Final = 4096
_DOMAIN: Final = b"edgelite peer handshake"


class HandshakeRole(enum.Enum):
    DIALER = "dialer"
    ACCEPTOR = "acceptor"


class HandshakeState(enum.Enum):
    AWAIT_HELLO = "await-hello"
    AWAIT_ACK = "await-ack"
    DONE = "done"
    FAILED = "failed"


class HandshakeFailure(enum.Enum):
    """Why a handshake failed; the values are metric and log labels."""

    VERSION = "version-mismatch"
    CLUSTER = "wrong-cluster"
    WRONG_PEER = "wrong-peer"  # the other side is not the node we dialled / meant
    SELF = "claims-our-id"
    BAD_PROOF = "bad-proof"
    REPLAY = "replayed-nonce"
    UNEXPECTED = "unexpected-message"
    REJECTED = "rejected-by-peer"


def compute_proof(
    secret: bytes,
    role: HandshakeRole,
    *,
    cluster_id: str,
    dialer_id: str,
    acceptor_id: str,
    dialer_nonce: bytes,
    acceptor_nonce: bytes,
    protocol_version: int = PEER_PROTOCOL_VERSION,
) -> bytes:
    """HMAC-SHA256 of the handshake transcript, as proven by the side playing ``role``."""
    parts = (
        _DOMAIN,
        role.value.encode(),
        protocol_version.to_bytes(4, "big"),
        cluster_id.encode(),
        dialer_id.encode(),
        acceptor_id.encode(),
        dialer_nonce,
        acceptor_nonce,
    )
    transcript = b"".join(len(part).to_bytes(4, "big") + part for part in parts)
    return hmac.digest(secret, transcript, hashlib.sha256)


class NonceCache:
    """The last ``capacity`` dialer nonces an acceptor saw, to refuse replayed Hellos
    early (the fresh acceptor nonce already makes a replay fail at the proof)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"nonce cache capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def add(self, nonce: bytes) -> bool:
        """Remember ``nonce``; False if it was already there."""
        if nonce in self._seen:
            return False
        self._seen[nonce] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)


class Handshake:
    """One side of one connection's handshake.

    Call :meth:`start` once and send what it returns, then feed every message received
    to :meth:`receive` and send what it returns, until ``state`` is DONE. Any failure
    raises HandshakeError (``reason`` is a :class:`HandshakeFailure` value) and leaves
    the state FAILED; :meth:`reject_message` is then the courtesy message to send
    before closing.

    Invariants: ``peer_id`` is set once the peer's Hello was accepted; DONE implies the
    peer proved the secret over this connection's nonces.
    """

    def __init__(
        self,
        role: HandshakeRole,
        *,
        secret: bytes,
        cluster_id: str,
        node_id: str,
        nonce: bytes,
        expected_peer_id: str | None = None,
        seen_nonces: NonceCache | None = None,
    ) -> None:
        if len(secret) < SECRET_BYTES_MIN:
            raise ValueError(f"the cluster secret needs >= {SECRET_BYTES_MIN} bytes")
        if not NONCE_BYTES_MIN <= len(nonce) <= NONCE_BYTES_MAX:
            raise ValueError(f"nonce of {len(nonce)} bytes")
        if not 0 < len(node_id) <= NODE_ID_CHARS_MAX:
            raise ValueError(f"node id {node_id!r} is empty or too long")
        if not 0 < len(cluster_id) <= CLUSTER_ID_CHARS_MAX:
            raise ValueError(f"cluster id {cluster_id!r} is empty or too long")
        if (role is HandshakeRole.DIALER) != (expected_peer_id is not None):
            raise ValueError("a dialer names the node it dialled; an acceptor does not")
        self.role = role
        self.state = HandshakeState.AWAIT_HELLO
        self.peer_id: str | None = None
        self.claimed_peer_id: str | None = None  # what the peer said, before proof
        self.failure: HandshakeFailure | None = None
        self._secret = secret
        self._cluster_id = cluster_id
        self._node_id = node_id
        self._nonce = nonce
        self._peer_nonce = b""
        self._expected_peer_id = expected_peer_id
        self._seen_nonces = seen_nonces
        self._started = False

    @property
    def done(self) -> bool:
        return self.state is HandshakeState.DONE

    def start(self) -> list[PeerMessage]:
        """The messages to send first: the dialer opens with its Hello."""
        assert not self._started, "Handshake.start called twice"
        self._started = True
        if self.role is HandshakeRole.DIALER:
            assert self._expected_peer_id is not None
            return [self._hello(self._expected_peer_id)]
        return []

    def receive(self, message: PeerMessage) -> list[PeerMessage]:
        """Consume one message from the peer; return the messages to send back."""
        assert self._started, "Handshake.receive before start"
        if isinstance(message, HelloReject):
            self._fail(HandshakeFailure.REJECTED,
                       f"peer rejected the handshake: {message.reason} {message.detail}")
        if self.state is HandshakeState.AWAIT_HELLO and isinstance(message, Hello):
            return self._on_hello(message)
        if self.state is HandshakeState.AWAIT_ACK and isinstance(message, HelloAck):
            return self._on_ack(message)
        self._fail(HandshakeFailure.UNEXPECTED,
                   f"{type(message).__name__} received in handshake state {self.state.value}")

    def reject_message(self) -> HelloReject | None:
        """What to tell the peer after a failure (None if it told us first)."""
        if self.failure is None or self.failure is HandshakeFailure.REJECTED:
            return None
        detail = {
            HandshakeFailure.VERSION: f"this node speaks version {PEER_PROTOCOL_VERSION}",
            HandshakeFailure.WRONG_PEER: f"this node is {self._node_id}",
        }.get(self.failure, "")
        return HelloReject(self.failure.value, detail)

    def _hello(self, peer_id: str) -> Hello:
        return Hello(PEER_PROTOCOL_VERSION, self._cluster_id, self._node_id, peer_id,
                     self._nonce)

    def _on_hello(self, hello: Hello) -> list[PeerMessage]:
        self.claimed_peer_id = hello.node_id
        self._check_hello(hello)
        self._peer_nonce = hello.nonce
        self.state = HandshakeState.AWAIT_ACK
        if self.role is HandshakeRole.ACCEPTOR:
            return [self._hello(hello.node_id)]
        return [HelloAck(self._proof(self.role))]

    def _check_hello(self, hello: Hello) -> None:
        if hello.protocol_version != PEER_PROTOCOL_VERSION:
            self._fail(HandshakeFailure.VERSION,
                       f"peer speaks protocol version {hello.protocol_version}, "
                       f"this node {PEER_PROTOCOL_VERSION}")
        if hello.cluster_id != self._cluster_id:
            self._fail(HandshakeFailure.CLUSTER, f"peer belongs to cluster {hello.cluster_id!r}")
        if hello.node_id == self._node_id:
            self._fail(HandshakeFailure.SELF, f"peer claims this node's id {hello.node_id!r}")
        if hello.peer_id != self._node_id:
            self._fail(HandshakeFailure.WRONG_PEER,
                       f"peer {hello.node_id!r} meant to reach {hello.peer_id!r}, "
                       f"this node is {self._node_id!r}")
        if self._expected_peer_id is not None and hello.node_id != self._expected_peer_id:
            self._fail(HandshakeFailure.WRONG_PEER,
                       f"dialled {self._expected_peer_id!r} but {hello.node_id!r} answered")
        if hello.nonce == self._nonce:
            self._fail(HandshakeFailure.REPLAY, "peer echoed this node's own nonce")
        if self._seen_nonces is not None and not self._seen_nonces.add(hello.nonce):
            self._fail(HandshakeFailure.REPLAY,
                       f"peer {hello.node_id!r} reused a nonce already seen")

    def _on_ack(self, ack: HelloAck) -> list[PeerMessage]:
        peer_role = (HandshakeRole.ACCEPTOR if self.role is HandshakeRole.DIALER
                     else HandshakeRole.DIALER)
        if not hmac.compare_digest(ack.proof, self._proof(peer_role)):
            self._fail(HandshakeFailure.BAD_PROOF,
                       f"peer {self.claimed_peer_id!r} failed to prove the cluster secret")
        self.peer_id = self.claimed_peer_id
        self.state = HandshakeState.DONE
        if self.role is HandshakeRole.ACCEPTOR:
            return [HelloAck(self._proof(self.role))]
        return []

    def _proof(self, role: HandshakeRole) -> bytes:
        peer_id = self.claimed_peer_id
        assert peer_id is not None, "proof before the peer's Hello"
        if self.role is HandshakeRole.DIALER:
            ids = (self._node_id, peer_id)
            nonces = (self._nonce, self._peer_nonce)
        else:
            ids = (peer_id, self._node_id)
            nonces = (self._peer_nonce, self._nonce)
        return compute_proof(self._secret, role, cluster_id=self._cluster_id,
                             dialer_id=ids[0], acceptor_id=ids[1],
                             dialer_nonce=nonces[0], acceptor_nonce=nonces[1])

    def _fail(self, failure: HandshakeFailure, message: str) -> NoReturn:
        self.state = HandshakeState.FAILED
        self.failure = failure
        raise HandshakeError(message, reason=failure.value)
