"""PeerTransport over real sockets on 127.0.0.1 (and through the fault proxy).

Waits are bounded polls for a behaviour ("eventually delivered"), never timing claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import itertools
import logging
import random
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from edgelite.cluster.transport import PeerTransport, TransportLimits, backoff_delay_s
from edgelite.cluster.transport.connection import run_handshake
from edgelite.errors import (
    ConfigError,
    PeerNoReplyError,
    PeerRemoteError,
    PeerTimeoutError,
    PeerUnavailableError,
)
from edgelite.protocol.peer import (
    ForwardRequest,
    ForwardResponse,
    FrameDecoder,
    Handshake,
    HandshakeRole,
    Hello,
    HelloReject,
    PeerMessage,
    RpcBody,
    decode_peer_message,
    encode_frame,
    encode_peer_message,
)
from edgelite.raft.messages import AppendEntries, Heartbeat, InstallSnapshot, RequestVote
from edgelite.raft.types import ConfState, Entry, SnapshotMeta
from tests.support.faultproxy import Direction, FaultNetwork, FaultProxy, Mode

SECRET = b"cluster-secret-for-transport-tests"
WAIT_S = 10.0
FAST = TransportLimits(connect_timeout_s=1.0, handshake_timeout_s=1.0, backoff_initial_s=0.01,
                       backoff_max_s=0.2, ping_interval_s=0.1, idle_timeout_s=1.0)

pytestmark = pytest.mark.timeout(60)


class Inbox:
    """Everything one transport delivered, with a way to wait for more."""

    def __init__(self) -> None:
        self.items: list[tuple[str, PeerMessage]] = []
        self._changed = asyncio.Event()

    def __call__(self, peer_id: str, message: PeerMessage) -> None:
        self.items.append((peer_id, message))
        self._changed.set()

    async def wait_for(self, count: int) -> list[tuple[str, PeerMessage]]:
        async with asyncio.timeout(WAIT_S):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"not within {WAIT_S} s: {what}")


class Cluster:
    """Transports made by one test; all stopped at the end."""

    def __init__(self) -> None:
        self.transports: list[PeerTransport] = []
        self.inboxes: dict[str, Inbox] = {}

    async def node(self, node_id: str, *, port: int = 0, secret: bytes = SECRET,
                   **options: Any) -> PeerTransport:
        inbox = self.inboxes.setdefault(node_id, Inbox())
        options.setdefault("limits", FAST)
        options.setdefault("rng", random.Random(7))
        handler = options.pop("on_message", inbox)
        transport = PeerTransport(node_id, secret, "127.0.0.1", port, handler, **options)
        await transport.start()
        self.transports.append(transport)
        return transport

    async def pair(self, **options: Any) -> tuple[PeerTransport, PeerTransport]:
        a = await self.node("a", **options)
        b = await self.node("b", **options)
        a.set_peer("b", *b.listen_address)
        b.set_peer("a", *a.listen_address)
        return a, b

    async def stop(self) -> None:
        for transport in self.transports:
            await transport.stop()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    made = Cluster()
    yield made
    await made.stop()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftover, f"tasks left running after stop: {leftover}"


def heartbeat(frm: str, to: str, commit: int) -> Heartbeat:
    return Heartbeat(frm, to, term=3, commit=commit)


async def raw_dial(address: tuple[str, int], *, node_id: str = "x", peer_id: str = "b",
                   secret: bytes = SECRET, nonce: bytes | None = None
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-driven authenticated connection, for sending what a transport never would."""
    reader, writer = await asyncio.open_connection(*address)
    handshake = Handshake(HandshakeRole.DIALER, secret=secret, cluster_id="edgelite",
                          node_id=node_id, nonce=nonce or random.randbytes(32),
                          expected_peer_id=peer_id)
    await run_handshake(handshake, reader, writer)
    return reader, writer


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(WAIT_S):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    return True


# ---- delivery ------------------------------------------------------------------------

async def test_messages_flow_both_ways_in_order(cluster: Cluster) -> None:
    a, b = await cluster.pair()
    big = AppendEntries("a", "b", 3, 10, 3, (Entry(3, 11, data=b"z" * (1 << 20)),), 10)
    meta = SnapshotMeta(50, 3, ConfState(frozenset({"a", "b"})), 1 << 30, "snap-50")
    chunk = InstallSnapshot("a", "b", 3, meta, 0, 65536, b"s" * 65536, False)
    to_b: list[PeerMessage] = [heartbeat("a", "b", i) for i in range(100)] + [big, chunk]
    to_a: list[PeerMessage] = [RequestVote("b", "a", 4, 20, 3, pre_vote=True)] + \
        [heartbeat("b", "a", i) for i in range(100)]
    for message in to_b:
        assert a.send("b", message)
    for message in to_a:
        assert b.send("a", message)
    assert await cluster.inboxes["b"].wait_for(len(to_b)) == [("a", m) for m in to_b]
    assert await cluster.inboxes["a"].wait_for(len(to_a)) == [("b", m) for m in to_a]
    assert a.peer_metrics()["b"]["received"] >= len(to_a)
    assert b.peer_metrics()["a"]["sent"] >= len(to_a)


async def test_one_connection_per_pair_after_simultaneous_dials(cluster: Cluster) -> None:
    a, b = await cluster.pair()
    for round_ in range(20):
        a.send("b", heartbeat("a", "b", round_))
        b.send("a", heartbeat("b", "a", round_))
    await cluster.inboxes["a"].wait_for(20)
    await cluster.inboxes["b"].wait_for(20)

    def same_socket() -> bool:
        ours = a._links.peers["b"].connection
        theirs = b._links.peers["a"].connection
        return ours is not None and theirs is not None and \
            ours.writer.get_extra_info("sockname") == theirs.writer.get_extra_info("peername")

    await eventually(same_socket, "both ends use the same single connection")
    # the survivor is the one the smaller id dialled
    connection = a._links.peers["b"].connection
    assert connection is not None and connection.dialled


async def test_many_small_messages_arrive_in_order(cluster: Cluster) -> None:
    a, _b = await cluster.pair(queue_messages_max=100_000)
    count = 20_000
    for index in range(count):
        assert a.send("b", heartbeat("a", "b", index))
        if index % 2000 == 0:
            await asyncio.sleep(0)
    received = await cluster.inboxes["b"].wait_for(count)
    assert [m.commit for _, m in received] == list(range(count))  # type: ignore[union-attr]


async def test_one_way_cluster_messages_reach_on_message(cluster: Cluster) -> None:
    a, _b = await cluster.pair()
    message = ForwardRequest(9, "pipeline", "db1", {"sub": "u"}, b"{}", {"h": "v"})
    assert a.send("b", message)
    assert await cluster.inboxes["b"].wait_for(1) == [("a", message)]


# ---- peers coming and going ----------------------------------------------------------

async def test_reconnects_after_the_peer_restarts(cluster: Cluster) -> None:
    a, b = await cluster.pair()
    assert a.send("b", heartbeat("a", "b", 1))
    await cluster.inboxes["b"].wait_for(1)
    port = b.listen_address[1]
    await b.stop()
    # while b is down, sends are accepted or dropped but never block or raise
    for index in range(50):
        a.send("b", heartbeat("a", "b", 100 + index))
        await asyncio.sleep(0.005)
    restarted = await cluster.node("b", port=port)
    restarted.set_peer("a", *a.listen_address)
    inbox = cluster.inboxes["b"]
    before = len(inbox.items)

    async def keep_sending() -> None:
        index = 1000
        while len(inbox.items) == before:
            a.send("b", heartbeat("a", "b", index))
            index += 1
            await asyncio.sleep(0.02)

    async with asyncio.timeout(WAIT_S):
        await keep_sending()
    metrics = a.peer_metrics()["b"]
    assert metrics["reconnects"] >= 1
    assert metrics["connect_failures"] + metrics["handshake_failures"] >= 0
    assert a.is_connected("b")


async def test_backoff_grows_and_is_bounded_while_the_peer_is_down(cluster: Cluster) -> None:
    a = await cluster.node("a")
    with_nobody = await cluster.node("gone")
    address = with_nobody.listen_address
    await with_nobody.stop()
    a.set_peer("gone", *address)

    async def keep_sending() -> None:
        while a.peer_metrics()["gone"]["connect_failures"] < 4:
            a.send("gone", heartbeat("a", "gone", 0))
            await asyncio.sleep(0.01)

    async with asyncio.timeout(WAIT_S):
        await keep_sending()
    metrics = a.peer_metrics()["gone"]
    assert metrics["queue_messages"] <= a.limits.queue_messages_max
    assert metrics["dropped"] > 0  # queued frames are dropped after each failed dial


def test_backoff_policy_is_exponential_jittered_capped_and_seeded() -> None:
    def delays(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [backoff_delay_s(n, initial_s=0.1, max_s=2.0, rng=rng) for n in range(12)]

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)
    for failures, delay in enumerate(delays(3)):
        ceiling = 0.0 if failures == 0 else min(2.0, 0.1 * 2 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_delay_s(10_000, initial_s=0.1, max_s=2.0, rng=random.Random(0)) <= 2.0


async def test_set_peer_with_a_new_address_redials_there(cluster: Cluster) -> None:
    a, b = await cluster.pair()
    assert a.send("b", heartbeat("a", "b", 1))
    await cluster.inboxes["b"].wait_for(1)
    await b.stop()
    moved = await cluster.node("b")
    a.set_peer("b", *moved.listen_address)
    inbox = cluster.inboxes["b"]
    before = len(inbox.items)

    async def keep_sending() -> None:
        while len(inbox.items) == before:
            a.send("b", heartbeat("a", "b", 2))
            await asyncio.sleep(0.02)

    async with asyncio.timeout(WAIT_S):
        await keep_sending()


async def test_send_to_unknown_or_removed_peer_is_dropped(cluster: Cluster) -> None:
    a, _b = await cluster.pair()
    assert not a.send("nobody", heartbeat("a", "nobody", 1))
    a.remove_peer("b")
    assert not a.send("b", heartbeat("a", "b", 1))
    assert "b" not in a.peer_metrics()
    assert a.transport_metrics()["dropped_unknown_peer"] == 2


async def test_an_oversized_message_is_dropped_by_the_sender(cluster: Cluster) -> None:
    a, _b = await cluster.pair(limits=FAST, frame_bytes_max=4096)
    too_big = AppendEntries("a", "b", 1, 0, 0, (Entry(1, 1, data=b"x" * 5000),), 0)
    assert not a.send("b", too_big)
    assert a.peer_metrics()["b"]["dropped"] == 1


# ---- authentication ------------------------------------------------------------------

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


async def recorded_dialer_frames(address: tuple[str, int]) -> list[bytes]:
    """Complete one genuine handshake by hand; the frames the dialer sent, as on the wire."""
    reader, writer = await asyncio.open_connection(*address)
    handshake = Handshake(HandshakeRole.DIALER, secret=SECRET, cluster_id="edgelite",
                          node_id="x", nonce=random.randbytes(32), expected_peer_id="b")
    sent = [encode_frame(encode_peer_message(m)) for m in handshake.start()]
    writer.write(sent[0])
    while not handshake.done:
        size = int.from_bytes(await reader.readexactly(4), "big")
        replies = handshake.receive(decode_peer_message(await reader.readexactly(size)))
        for message in replies:
            sent.append(encode_frame(encode_peer_message(message)))
            writer.write(sent[-1])
    writer.close()
    return sent


async def replay(address: tuple[str, int], frames: list[bytes]) -> list[PeerMessage]:
    """Send recorded frames on a new connection; what came back before the close."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"".join(frames))
    received = FrameDecoder(1 << 16)
    messages: list[PeerMessage] = []
    async with asyncio.timeout(WAIT_S):
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                messages.extend(decode_peer_message(f) for f in received.feed(data))
    writer.close()
    return messages


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


# ---- malformed traffic ---------------------------------------------------------------

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


# ---- bounded queues under a partition ------------------------------------------------

async def test_partitioned_peer_queue_is_bounded_and_drops(cluster: Cluster) -> None:
    b = await cluster.node("b")
    a = await cluster.node("a", queue_messages_max=10)
    with FaultProxy(*b.listen_address) as link:
        link.partition(mode=Mode.HOLD)  # even the handshake hangs
        a.set_peer("b", *link.address)
        accepted = [a.send("b", heartbeat("a", "b", i)) for i in range(50)]
        assert accepted == [True] * 10 + [False] * 40
        metrics = a.peer_metrics()["b"]
        assert metrics["dropped"] == 40 and metrics["queue_messages"] == 10
        link.heal()
        inbox = cluster.inboxes["b"]

        async def keep_sending() -> None:
            index = 100
            while not any(m.commit >= 100 for _, m in inbox.items):  # type: ignore[union-attr]
                a.send("b", heartbeat("a", "b", index))
                index += 1
                await asyncio.sleep(0.02)

        async with asyncio.timeout(WAIT_S):
            await keep_sending()


async def test_stalled_connection_fills_the_queue_then_drops(cluster: Cluster) -> None:
    b = await cluster.node("b")
    a = await cluster.node("a", queue_messages_max=8,
                           limits=TransportLimits(idle_timeout_s=30.0, ping_interval_s=10.0))
    with FaultProxy(*b.listen_address) as link:
        a.set_peer("b", *link.address)
        assert a.send("b", heartbeat("a", "b", 0))
        await cluster.inboxes["b"].wait_for(1)
        link.partition(Direction.UPSTREAM, Mode.HOLD)  # b stops reading what a sends
        chunk = AppendEntries("a", "b", 3, 0, 0, (Entry(3, 1, data=b"d" * (256 << 10)),), 0)
        sent = 0
        async with asyncio.timeout(WAIT_S):
            while a.send("b", chunk):
                sent += 1
                await asyncio.sleep(0)  # let the link task write what it can
        assert sent > 0
        metrics = a.peer_metrics()["b"]
        assert metrics["dropped"] >= 1 and metrics["queue_messages"] <= 8
        link.heal()


async def test_silent_connection_is_closed_after_the_idle_timeout(cluster: Cluster) -> None:
    b = await cluster.node("b")
    a = await cluster.node("a")
    with FaultProxy(*b.listen_address) as link:
        a.set_peer("b", *link.address)
        assert a.send("b", heartbeat("a", "b", 0))
        await cluster.inboxes["b"].wait_for(1)
        link.partition()  # pings vanish both ways
        await eventually(lambda: not a.is_connected("b") and not b.is_connected("a"),
                         "both ends notice the dead link")


async def test_keepalive_holds_an_idle_connection_open(cluster: Cluster) -> None:
    limits = TransportLimits(ping_interval_s=0.05, idle_timeout_s=0.3)
    a, _b = await cluster.pair(limits=limits)
    assert a.send("b", heartbeat("a", "b", 0))
    await cluster.inboxes["b"].wait_for(1)
    await asyncio.sleep(3 * limits.idle_timeout_s)  # silence from the application
    assert a.is_connected("b") and a.peer_metrics()["b"]["connects"] == 1


async def test_a_failing_message_handler_does_not_break_the_link(cluster: Cluster) -> None:
    delivered: list[PeerMessage] = []

    def flaky(peer_id: str, message: PeerMessage) -> None:
        if isinstance(message, Heartbeat) and message.commit == 1:
            raise RuntimeError("member bug")
        delivered.append(message)

    a = await cluster.node("a")
    b = await cluster.node("b", on_message=flaky)
    a.set_peer("b", *b.listen_address)
    for commit in range(3):
        assert a.send("b", heartbeat("a", "b", commit))
    await eventually(lambda: len(delivered) == 2, "the other two messages delivered")
    assert b.peer_metrics()["a"]["handler_errors"] == 1 and b.is_connected("a")


# ---- requests ------------------------------------------------------------------------

def forward(request_id: int, payload: bytes = b"q") -> ForwardRequest:
    return ForwardRequest(request_id, "pipeline", "db", {"sub": "alice"}, payload, {})


async def echo_handler(peer_id: str, body: RpcBody) -> RpcBody:
    assert isinstance(body, ForwardRequest)
    return ForwardResponse(body.request_id, 200, peer_id.encode() + b":" + body.payload, {})


async def test_requests_get_their_own_replies(cluster: Cluster) -> None:
    a = await cluster.node("a")
    b = await cluster.node("b", on_request=echo_handler)
    a.set_peer("b", *b.listen_address)
    replies = await asyncio.gather(*(a.request("b", forward(i, b"%d" % i), 5.0)
                                     for i in range(50)))
    for index, reply in enumerate(replies):
        assert reply == ForwardResponse(index, 200, b"a:%d" % index, {})
    assert a.transport_metrics()["requests_inflight"] == 0


async def test_request_timeout_raises_a_clear_error(cluster: Cluster) -> None:
    never = asyncio.Event()

    async def stuck(peer_id: str, body: RpcBody) -> RpcBody:
        await never.wait()
        raise AssertionError("unreachable")

    a = await cluster.node("a")
    b = await cluster.node("b", on_request=stuck)
    a.set_peer("b", *b.listen_address)
    with pytest.raises(PeerTimeoutError, match=r"no reply from b to request \d+ within 0.2 s"):
        await a.request("b", forward(1), 0.2)
    assert a.transport_metrics()["requests_inflight"] == 0


async def test_remote_handler_failures_come_back_as_errors(cluster: Cluster) -> None:
    async def broken(peer_id: str, body: RpcBody) -> RpcBody:
        raise ValueError("the database is on fire")

    a = await cluster.node("a")
    b = await cluster.node("b", on_request=broken)
    c = await cluster.node("c")  # no handler at all
    a.set_peer("b", *b.listen_address)
    a.set_peer("c", *c.listen_address)
    with pytest.raises(PeerRemoteError, match="ValueError: the database is on fire"):
        await a.request("b", forward(1), 5.0)
    with pytest.raises(PeerRemoteError, match="serves no requests"):
        await a.request("c", forward(2), 5.0)


async def test_request_to_an_unreachable_peer_fails_as_not_sent(cluster: Cluster) -> None:
    a = await cluster.node("a")
    gone = await cluster.node("gone")
    address = gone.listen_address
    await gone.stop()
    a.set_peer("gone", *address)
    with pytest.raises(PeerUnavailableError, match="not sent: peer unreachable"):
        await a.request("gone", forward(1), 5.0)
    with pytest.raises(PeerUnavailableError, match="unknown peer"):
        await a.request("nobody", forward(1), 5.0)


async def test_pending_requests_fail_when_the_peer_is_removed(cluster: Cluster) -> None:
    started = asyncio.Event()

    async def slow(peer_id: str, body: RpcBody) -> RpcBody:
        started.set()
        await asyncio.sleep(WAIT_S)
        raise AssertionError("unreachable")

    a = await cluster.node("a")
    b = await cluster.node("b", on_request=slow)
    a.set_peer("b", *b.listen_address)
    waiting = asyncio.ensure_future(a.request("b", forward(1), WAIT_S))
    await started.wait()
    a.remove_peer("b")
    with pytest.raises(PeerNoReplyError, match="the peer was removed"):
        await waiting


async def test_requests_in_flight_are_bounded(cluster: Cluster) -> None:
    release = asyncio.Event()

    async def held(peer_id: str, body: RpcBody) -> RpcBody:
        await release.wait()
        return await echo_handler(peer_id, body)

    a = await cluster.node("a", requests_inflight_max=3)
    b = await cluster.node("b", on_request=held, inbound_requests_inflight_max=2)
    a.set_peer("b", *b.listen_address)
    first = [asyncio.ensure_future(a.request("b", forward(i), WAIT_S)) for i in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(PeerUnavailableError, match="requests_inflight_max=3"):
        await a.request("b", forward(9), WAIT_S)
    # b serves two at a time and refuses the third while they run
    outcomes = await asyncio.gather(*first[2:], return_exceptions=True)
    assert isinstance(outcomes[0], PeerRemoteError) and "overloaded" in str(outcomes[0])
    release.set()
    assert [r.request_id for r in await asyncio.gather(*first[:2])] == [0, 1]  # type: ignore[union-attr]


async def test_stop_fails_pending_requests_and_leaves_no_tasks(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "asyncio")
    async def slow(peer_id: str, body: RpcBody) -> RpcBody:
        await asyncio.sleep(WAIT_S)
        raise AssertionError("unreachable")

    a = await cluster.node("a")
    b = await cluster.node("b", on_request=slow)
    a.set_peer("b", *b.listen_address)
    waiting = asyncio.ensure_future(a.request("b", forward(1), WAIT_S))
    await eventually(lambda: b.transport_metrics()["inbound_requests_inflight"] == 1,
                     "b is serving the request")
    half_open = await asyncio.open_connection(*b.listen_address)  # a handshake in progress
    await a.stop()
    await b.stop()
    with pytest.raises(PeerNoReplyError, match="transport stopped"):
        await waiting
    assert not a.send("b", heartbeat("a", "b", 1))
    half_open[1].close()
    # the cluster fixture asserts that no task survived; asyncio logged nothing either
    # (Python 3.11 logs "Exception in callback" for a cancelled start_server handler)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


# ---- configuration -------------------------------------------------------------------

def test_configuration_is_checked() -> None:
    inbox = Inbox()
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        PeerTransport("a", b"short", "127.0.0.1", 0, inbox)
    with pytest.raises(ConfigError, match="queue_messages_max must be > 0"):
        PeerTransport("a", SECRET, "127.0.0.1", 0, inbox, queue_messages_max=0)
    with pytest.raises(ConfigError, match="idle_timeout_s"):
        TransportLimits(ping_interval_s=5.0, idle_timeout_s=1.0)
    with pytest.raises(ConfigError, match="own peer"):
        PeerTransport("a", SECRET, "127.0.0.1", 0, inbox).set_peer("a", "127.0.0.1", 1)
    with pytest.raises(TypeError):
        PeerTransport("a", SECRET, "127.0.0.1", 0, inbox, no_such_limit=1)


async def test_inbound_only_peer_is_answered_on_its_own_connection(cluster: Cluster) -> None:
    a = await cluster.node("a")
    b = await cluster.node("b")
    a.set_peer("b", *b.listen_address)  # b has no address for a
    assert a.send("b", heartbeat("a", "b", 1))
    await cluster.inboxes["b"].wait_for(1)
    assert b.peers() == {"a": None}
    assert b.send("a", heartbeat("b", "a", 2))
    assert await cluster.inboxes["a"].wait_for(1) == [("b", heartbeat("b", "a", 2))]
    await a.stop()
    await eventually(lambda: not b.is_connected("a"), "b sees a leave")
    assert b.peer_metrics()["a"]["connected"] == 0


async def test_three_nodes_through_a_fault_network(cluster: Cluster) -> None:
    nodes = {name: await cluster.node(name) for name in ("a", "b", "c")}
    targets = {name: node.listen_address for name, node in nodes.items()}
    with FaultNetwork(targets) as network:
        for a, b in itertools.permutations(nodes, 2):
            nodes[a].set_peer(b, *network.address(a, b))
        counter = itertools.count()

        def received(frm: str, to: str) -> int:
            return sum(1 for peer, _ in cluster.inboxes[to].items if peer == frm)

        async def exchange(pairs: list[tuple[str, str]]) -> None:
            """Send on every pair until each pair delivered one more message."""
            baseline = {pair: received(*pair) for pair in pairs}
            async with asyncio.timeout(WAIT_S):
                while any(received(*pair) == baseline[pair] for pair in pairs):
                    for frm, to in pairs:
                        nodes[frm].send(to, heartbeat(frm, to, next(counter)))
                    await asyncio.sleep(0.02)

        everyone = list(itertools.permutations(nodes, 2))
        await exchange(everyone)
        network.partition({"c"})
        await exchange([("a", "b"), ("b", "a")])  # the majority side keeps talking
        before = received("a", "c") + received("b", "c")
        for _ in range(20):
            nodes["a"].send("c", heartbeat("a", "c", next(counter)))
            nodes["b"].send("c", heartbeat("b", "c", next(counter)))
            await asyncio.sleep(0.01)
        assert received("a", "c") + received("b", "c") == before  # nothing crosses
        network.heal()
        await exchange(everyone)


# ---- TLS underneath ------------------------------------------------------------------

def _certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: x509.Name | None, issuer_key: Any, key: Any,
              is_ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (x509.CertificateBuilder().subject_name(name)
                   .issuer_name(issuer or name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True))
        if not is_ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("edgelite test CA", None, ca_key, ca_key, True)
    node_key = ec.generate_private_key(ec.SECP256R1())
    node = build("node", ca.subject, ca_key, node_key, False)
    paths = {"ca": directory / "ca.pem", "cert": directory / "node.pem",
             "key": directory / "node.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(node.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(node_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return paths


def _contexts(paths: dict[str, Path], *, client_cert: bool = True
              ) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(paths["ca"]))
    server.load_cert_chain(paths["cert"], paths["key"])
    server.verify_mode = ssl.CERT_REQUIRED  # mutual TLS
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(paths["ca"]))
    if client_cert:
        client.load_cert_chain(paths["cert"], paths["key"])
    return server, client


async def test_mutual_tls_underneath_the_handshake(cluster: Cluster, tmp_path: Path) -> None:
    server_ssl, client_ssl = _contexts(_certificates(tmp_path))
    a, b = await cluster.pair(server_ssl=server_ssl, client_ssl=client_ssl)
    assert a.send("b", heartbeat("a", "b", 1))
    assert b.send("a", heartbeat("b", "a", 2))
    assert await cluster.inboxes["b"].wait_for(1) == [("a", heartbeat("a", "b", 1))]
    assert await cluster.inboxes["a"].wait_for(1) == [("b", heartbeat("b", "a", 2))]
    connection = a._links.peers["b"].connection
    assert connection is not None and connection.writer.get_extra_info("ssl_object")


async def test_tls_peer_refuses_dialers_without_a_client_certificate(
        cluster: Cluster, tmp_path: Path) -> None:
    paths = _certificates(tmp_path)
    server_ssl, _ = _contexts(paths)
    _, certless = _contexts(paths, client_cert=False)
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
