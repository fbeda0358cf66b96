"""The sans-IO handshake: both sides prove the cluster secret, bound to this connection."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

import pytest

from edgelite.errors import HandshakeError
from edgelite.protocol.peer import handshake as handshake_module
from edgelite.protocol.peer.codec import PeerMessage, decode_peer_message, encode_peer_message
from edgelite.protocol.peer.handshake import (
    Handshake,
    HandshakeFailure,
    HandshakeRole,
    HandshakeState,
    NonceCache,
    compute_proof,
)
from edgelite.protocol.peer.messages import Hello, HelloAck, HelloReject, Ping

SECRET = b"correct horse battery staple!"


def nonces() -> Iterator[bytes]:
    counter = 0
    while True:
        counter += 1
        yield counter.to_bytes(32, "big")


NONCES = nonces()


def dialer(node: str = "n1", peer: str = "n2", **overrides: Any) -> Handshake:
    options: dict[str, Any] = {"secret": SECRET, "cluster_id": "prod", "node_id": node,
                               "nonce": next(NONCES), "expected_peer_id": peer}
    options.update(overrides)
    return Handshake(HandshakeRole.DIALER, **options)


def acceptor(node: str = "n2", **overrides: Any) -> Handshake:
    options: dict[str, Any] = {"secret": SECRET, "cluster_id": "prod", "node_id": node,
                               "nonce": next(NONCES), "seen_nonces": NonceCache(100)}
    options.update(overrides)
    return Handshake(HandshakeRole.ACCEPTOR, **options)


def wire(messages: list[PeerMessage]) -> list[PeerMessage]:
    """Send through the real codec, as the transport does."""
    return [decode_peer_message(encode_peer_message(m)) for m in messages]


def run(d: Handshake, a: Handshake) -> list[PeerMessage]:
    """Exchange messages until both finish or one raises; returns everything sent."""
    transcript: list[PeerMessage] = []
    to_acceptor = wire(d.start())
    assert a.start() == []
    while to_acceptor:
        transcript.extend(to_acceptor)
        to_dialer: list[PeerMessage] = []
        for message in to_acceptor:
            to_dialer.extend(wire(a.receive(message)))
        transcript.extend(to_dialer)
        to_acceptor = []
        for message in to_dialer:
            to_acceptor.extend(wire(d.receive(message)))
    return transcript


def test_matching_secrets_authenticate_both_sides() -> None:
    d, a = dialer(), acceptor()
    transcript = run(d, a)
    assert d.done and a.done
    assert d.peer_id == "n2" and a.peer_id == "n1"
    assert [type(m) for m in transcript] == [Hello, Hello, HelloAck, HelloAck]


@pytest.mark.parametrize("side", ["dialer", "acceptor"])
def test_a_wrong_secret_on_either_side_fails_at_the_acceptor(side: str) -> None:
    wrong = {"secret": b"not the cluster secret at all"}
    d = dialer(**(wrong if side == "dialer" else {}))
    a = acceptor(**(wrong if side == "acceptor" else {}))
    with pytest.raises(HandshakeError, match="failed to prove") as info:
        run(d, a)
    assert info.value.reason == "bad-proof"
    assert a.state is HandshakeState.FAILED and not d.done
    assert a.reject_message() == HelloReject("bad-proof", "")


def test_acceptor_never_reveals_a_proof_to_a_stranger() -> None:
    d, a = dialer(secret=b"guessing the secret........"), acceptor()
    a.start()
    sent_by_acceptor = a.receive(wire(d.start())[0])
    sent_by_dialer = d.receive(sent_by_acceptor[0])
    with pytest.raises(HandshakeError):
        a.receive(sent_by_dialer[0])
    assert not any(isinstance(m, HelloAck) for m in sent_by_acceptor)


def test_wrong_cluster_is_rejected() -> None:
    with pytest.raises(HandshakeError, match="cluster 'staging'") as info:
        run(dialer(cluster_id="staging"), acceptor())
    assert info.value.reason == HandshakeFailure.CLUSTER.value


def test_version_mismatch_is_rejected_with_our_version_in_the_reply() -> None:
    a = acceptor()
    a.start()
    hello = Hello(2, "prod", "n1", "n2", next(NONCES))
    with pytest.raises(HandshakeError, match="version 2") as info:
        a.receive(hello)
    assert info.value.reason == "version-mismatch"
    reject = a.reject_message()
    assert reject is not None and "version 1" in reject.detail


def test_acceptor_refuses_a_dialer_that_meant_another_node() -> None:
    with pytest.raises(HandshakeError, match="meant to reach 'n3'") as info:
        run(dialer(peer="n3"), acceptor(node="n2"))
    assert info.value.reason == "wrong-peer"


def test_dialer_refuses_an_acceptor_claiming_another_id() -> None:
    # the acceptor at n2's address believes it is n9 and says so in its Hello
    d = dialer(peer="n2")
    hello_from_d = d.start()[0]
    assert isinstance(hello_from_d, Hello)
    impostor_hello = Hello(1, "prod", "n9", "n1", next(NONCES))
    with pytest.raises(HandshakeError, match="dialled 'n2' but 'n9' answered"):
        d.receive(impostor_hello)


def test_peer_claiming_our_own_id_is_refused() -> None:
    with pytest.raises(HandshakeError) as info:
        run(dialer(node="n2", peer="n2"), acceptor(node="n2"))
    assert info.value.reason == "claims-our-id"


def test_replayed_hello_is_refused_by_the_nonce_cache() -> None:
    seen = NonceCache(100)
    d, a = dialer(), acceptor(seen_nonces=seen)
    transcript = run(d, a)
    replayed = acceptor(seen_nonces=seen)
    replayed.start()
    with pytest.raises(HandshakeError, match="reused a nonce") as info:
        replayed.receive(transcript[0])
    assert info.value.reason == "replayed-nonce"


def test_replayed_proof_fails_against_a_fresh_acceptor_nonce() -> None:
    d, a = dialer(), acceptor()
    transcript = run(d, a)
    fresh = acceptor()  # an acceptor that never saw the nonce (e.g. after a restart)
    fresh.start()
    fresh.receive(transcript[0])
    with pytest.raises(HandshakeError) as info:
        fresh.receive(transcript[2])  # the dialer's recorded HelloAck
    assert info.value.reason == "bad-proof"


def test_a_proof_cannot_be_reflected_to_its_author() -> None:
    d = dialer()
    d.start()
    acceptor_hello = Hello(1, "prod", "n2", "n1", next(NONCES))
    (ack,) = d.receive(acceptor_hello)
    with pytest.raises(HandshakeError, match="failed to prove"):
        d.receive(ack)


def _longer(value: str | bytes) -> str | bytes:
    return value + "x" if isinstance(value, str) else value + b"x"


def test_proofs_depend_on_every_transcript_field() -> None:
    base: dict[str, Any] = {"cluster_id": "prod", "dialer_id": "n1", "acceptor_id": "n2",
                            "dialer_nonce": b"d" * 32, "acceptor_nonce": b"a" * 32}
    reference = compute_proof(SECRET, HandshakeRole.DIALER, **base)
    variants = [
        compute_proof(SECRET, HandshakeRole.ACCEPTOR, **base),
        compute_proof(SECRET + b"!", HandshakeRole.DIALER, **base),
        compute_proof(SECRET, HandshakeRole.DIALER, **base, protocol_version=2),
        *(compute_proof(SECRET, HandshakeRole.DIALER, **{**base, key: _longer(base[key])})
          for key in base),
        # length prefixes: moving a byte between adjacent fields changes the proof
        compute_proof(SECRET, HandshakeRole.DIALER, **{**base, "dialer_id": "n1n",
                                                        "acceptor_id": "2"}),
    ]
    assert len(reference) == 32
    assert reference not in variants and len(set(variants)) == len(variants)


def test_proofs_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def recording_compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(handshake_module.hmac, "compare_digest", recording_compare)
    run(dialer(), acceptor())
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)


def test_unexpected_messages_fail_the_handshake() -> None:
    a = acceptor()
    a.start()
    with pytest.raises(HandshakeError, match="Ping received in handshake state await-hello"):
        a.receive(Ping(1))
    d = dialer()
    d.start()
    with pytest.raises(HandshakeError, match="HelloAck received"):
        d.receive(HelloAck(b"x" * 32))


def test_a_peer_rejection_ends_the_handshake_without_a_counter_reject() -> None:
    d = dialer()
    d.start()
    with pytest.raises(HandshakeError, match="wrong-cluster") as info:
        d.receive(HelloReject("wrong-cluster", ""))
    assert info.value.reason == "rejected-by-peer"
    assert d.reject_message() is None


def test_construction_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match="secret"):
        dialer(secret=b"short")
    with pytest.raises(ValueError, match="names the node"):
        acceptor(expected_peer_id="n1")
    with pytest.raises(ValueError, match="nonce"):
        dialer(nonce=b"x")


def test_nonce_cache_is_bounded_and_forgets_the_oldest() -> None:
    cache = NonceCache(3)
    assert all(cache.add(bytes([i])) for i in range(5))
    assert len(cache) == 3
    assert not cache.add(bytes([4]))
    assert cache.add(bytes([0]))  # forgotten, so accepted again
