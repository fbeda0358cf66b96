"""Who may talk: the secret handshake (wrong secret, cluster or node; replay; timeout),
malformed traffic from authenticated peers, and TLS underneath."""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import pytest

from edgelite.protocol.peer import (
    Hello,
    HelloReject,
    encode_frame,
    encode_peer_message,
)
from tests.cluster.transport.harness import (
    Cluster,
    certificates,
    closed_by_peer,
    eventually,
    heartbeat,
    raw_dial,
    recorded_dialer_frames,
    replay,
    tls_contexts,
)

pytestmark = pytest.mark.timeout(60)


async def test_wrong_secret_is_rejected_and_counted(cluster: Cluster,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "edgelite.cluster.transport")
    a = await cluster.node("a")
    b = await cluster.node("b", secret=b"some-other-clusters-secret")
    a.set_peer("b", *b.listen_address)
    b.set_peer("a", *a.listen_address)

    def rejected_both_ways() -> bool:
        a.send("b", heartbeat("a", "b", 1))
        return a.peer_metrics()["b"]["handshake_failures"] >= 1 and \
            b.peer_metrics()["a"]["handshake_failures"] >= 1

    await eventually(rejected_both_ways, "handshake failures counted on both sides")
    assert cluster.inboxes["b"].items == []
    assert not a.is_connected("b") and not b.is_connected("a")
    assert any("reason=bad-proof" in r.getMessage() for r in caplog.records)


async def test_wrong_cluster_is_rejected(cluster: Cluster) -> None:
    a = await cluster.node("a", cluster_id="prod")
    b = await cluster.node("b", cluster_id="staging")
    a.set_peer("b", *b.listen_address)

    def rejected() -> bool:
        a.send("b", heartbeat("a", "b", 1))
        return b.transport_metrics()["handshake_failures_unidentified"] >= 1

    await eventually(rejected, "the other cluster's node refused")
    assert cluster.inboxes["b"].items == []


async def test_a_node_that_is_not_the_one_dialled_is_refused(cluster: Cluster) -> None:
    a = await cluster.node("a")
    b = await cluster.node("b")
    a.set_peer("c", *b.listen_address)  # a stale address: b answers where c was

    def refused() -> bool:
        a.send("c", heartbeat("a", "c", 1))
        return a.peer_metrics()["c"]["handshake_failures"] >= 1

    await eventually(refused, "a refuses to talk to b as c")
    assert cluster.inboxes["b"].items == [] and not a.is_connected("c")
    assert "c" not in b.peer_metrics() and "a" not in b.peer_metrics()


async def test_replayed_handshake_is_rejected(cluster: Cluster) -> None:
    b = await cluster.node("b")
    frames = await recorded_dialer_frames(b.listen_address)
    assert len(frames) == 2  # Hello, HelloAck
    answer = await replay(b.listen_address, frames)
    assert answer == [HelloReject("replayed-nonce", "")]
    await b.stop()
    # a restarted node has forgotten the nonce: the old proof still fails, because it
    # covers the acceptor's nonce of the recorded connection, not of this one
    restarted = await cluster.node("b")
    answer = await replay(restarted.listen_address, frames)
    assert [type(m) for m in answer] == [Hello, HelloReject]
    assert answer[1] == HelloReject("bad-proof", "")
    assert restarted.transport_metrics()["handshake_failures_unidentified"] == 1
    assert cluster.inboxes["b"].items == []


async def test_handshake_that_never_completes_times_out(cluster: Cluster) -> None:
    b = await cluster.node("b")
    reader, writer = await asyncio.open_connection(*b.listen_address)
    assert await closed_by_peer(reader)  # we said nothing: b gives up after its timeout
    writer.close()
    assert b.transport_metrics()["handshake_failures_unidentified"] == 1


async def test_oversized_frame_closes_that_connection_only(cluster: Cluster) -> None:
    b = await cluster.node("b", frame_bytes_max=64 * 1024)
    c = await cluster.node("c")
    c.set_peer("b", *b.listen_address)
    b.set_peer("x", "127.0.0.1", 1)  # so the raw peer's counters are kept by id
    reader, writer = await raw_dial(b.listen_address)
    writer.write(struct.pack(">I", 64 * 1024 + 1) + b"x" * 100)
    assert await closed_by_peer(reader)
    writer.close()
    assert b.peer_metrics()["x"]["protocol_errors"] == 1
    assert c.send("b", heartbeat("c", "b", 5))  # b still serves everyone else
    assert await cluster.inboxes["b"].wait_for(1) == [("c", heartbeat("c", "b", 5))]


async def test_oversized_frame_during_the_handshake_is_refused(cluster: Cluster) -> None:
    b = await cluster.node("b")
    reader, writer = await asyncio.open_connection(*b.listen_address)
    writer.write(struct.pack(">I", 1 << 30))
    assert await closed_by_peer(reader)
    writer.close()
    assert b.transport_metrics()["handshake_failures_unidentified"] == 1


async def test_raft_message_from_another_sender_is_a_protocol_error(cluster: Cluster) -> None:
    b = await cluster.node("b")
    reader, writer = await raw_dial(b.listen_address, node_id="x")
    writer.write(encode_frame(encode_peer_message(heartbeat("y", "b", 1))))  # forged sender
    assert await closed_by_peer(reader)
    writer.close()
    assert cluster.inboxes["b"].items == []
    assert b.peer_metrics()["x"]["protocol_errors"] == 1


async def test_garbage_after_the_handshake_closes_the_connection(cluster: Cluster) -> None:
    b = await cluster.node("b")
    reader, writer = await raw_dial(b.listen_address)
    writer.write(encode_frame(b"\xc1not msgpack"))
    assert await closed_by_peer(reader)
    writer.close()
    assert b.peer_metrics()["x"]["protocol_errors"] == 1


async def test_mutual_tls_underneath_the_handshake(cluster: Cluster, tmp_path: Path) -> None:
    server_ssl, client_ssl = tls_contexts(certificates(tmp_path))
    a, b = await cluster.pair(server_ssl=server_ssl, client_ssl=client_ssl)
    assert a.send("b", heartbeat("a", "b", 1))
    assert b.send("a", heartbeat("b", "a", 2))
    assert await cluster.inboxes["b"].wait_for(1) == [("a", heartbeat("a", "b", 1))]
    assert await cluster.inboxes["a"].wait_for(1) == [("b", heartbeat("b", "a", 2))]
    connection = a._links.peers["b"].connection
    assert connection is not None and connection.writer.get_extra_info("ssl_object")


async def test_tls_peer_refuses_dialers_without_a_client_certificate(
        cluster: Cluster, tmp_path: Path) -> None:
    paths = certificates(tmp_path)
    server_ssl, _ = tls_contexts(paths)
    _, certless = tls_contexts(paths, client_cert=False)
    b = await cluster.node("b", server_ssl=server_ssl)
    a = await cluster.node("a", client_ssl=certless)
    plain = await cluster.node("p")
    a.set_peer("b", *b.listen_address)
    plain.set_peer("b", *b.listen_address)

    def refused() -> bool:
        a.send("b", heartbeat("a", "b", 1))
        plain.send("b", heartbeat("p", "b", 1))
        failures = [node.peer_metrics()["b"] for node in (a, plain)]
        return all(m["connect_failures"] + m["handshake_failures"] >= 1 for m in failures)

    await eventually(refused, "both dialers fail against the TLS port")
    assert cluster.inboxes["b"].items == []
    assert not a.is_connected("b") and not plain.is_connected("b")
