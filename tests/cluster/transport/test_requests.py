"""Requests between transports: replies, timeouts, remote failures, not-sent errors,
bounds, and what stop() does to everything in flight."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edgelite.errors import (
    PeerNoReplyError,
    PeerRemoteError,
    PeerTimeoutError,
    PeerUnavailableError,
)
from edgelite.protocol.peer import (
    ForwardResponse,
    RpcBody,
)
from tests.cluster.transport.harness import (
    WAIT_S,
    Cluster,
    echo_handler,
    eventually,
    forward,
    heartbeat,
)

pytestmark = pytest.mark.timeout(60)


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
