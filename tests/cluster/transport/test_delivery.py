"""Delivery between transports: both ways, in order, one connection per pair, peers
coming and going, backoff, keepalive, and three nodes through a fault network."""

from __future__ import annotations

import asyncio
import random

import pytest

from edgelite.cluster.transport import PeerTransport, TransportLimits, backoff_delay_s
from edgelite.errors import (
    ConfigError,
)
from edgelite.protocol.peer import (
    ForwardRequest,
    PeerMessage,
)
from edgelite.raft.messages import AppendEntries, Heartbeat, InstallSnapshot, RequestVote
from edgelite.raft.types import ConfState, Entry, SnapshotMeta
from tests.cluster.transport.harness import (
    FAST,
    SECRET,
    WAIT_S,
    Cluster,
    Inbox,
    eventually,
    heartbeat,
)

pytestmark = pytest.mark.timeout(60)


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
    assert a.transport_metrics()["dropped_unroutable"] == 2


async def test_an_oversized_message_is_dropped_by_the_sender(cluster: Cluster) -> None:
    a, _b = await cluster.pair(limits=FAST, frame_bytes_max=4096)
    too_big = AppendEntries("a", "b", 1, 0, 0, (Entry(1, 1, data=b"x" * 5000),), 0)
    assert not a.send("b", too_big)
    assert a.peer_metrics()["b"]["dropped"] == 1


async def test_keepalive_holds_an_idle_connection_open(cluster: Cluster) -> None:
    limits = TransportLimits(ping_interval_s=0.05, idle_timeout_s=0.3)
    a, _b = await cluster.pair(limits=limits)
    assert a.send("b", heartbeat("a", "b", 0))
    await cluster.inboxes["b"].wait_for(1)
    await asyncio.sleep(3 * limits.idle_timeout_s)  # silence from the application
    assert a.is_connected("b") and a.peer_metrics()["b"]["connects"] == 1


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
