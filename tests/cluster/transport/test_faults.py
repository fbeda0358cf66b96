"""Transports behind the fault proxy: bounded queues under partitions, dead links
closed by the idle timeout, a minority partition in a three-node network."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from edgelite.cluster.transport import TransportLimits
from edgelite.raft.messages import AppendEntries
from edgelite.raft.types import Entry
from tests.cluster.transport.harness import (
    WAIT_S,
    Cluster,
    eventually,
    heartbeat,
)
from tests.support.faultproxy import Direction, FaultNetwork, FaultProxy, Mode

pytestmark = pytest.mark.timeout(60)


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
