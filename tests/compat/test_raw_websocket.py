"""Group F of protocol.md §11, scenario 32: raw Hrana over WebSocket (§4).

Subprotocol negotiation, hrana1 behaviour without a subprotocol, protocol violations
closing the socket (request before hello, duplicate or unknown stream id, features
above the negotiated version, wrong frame type, bad JSON), and the hrana3 requests
(get_autocommit, cursors) plus stored SQL, describe and errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from tests.compat.conftest import ServerPool
from tests.compat.harness import PLAIN, CompatServer
from tests.compat.wire import Json, integer, stmt

pytestmark = pytest.mark.timeout(60)
RECEIVE_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(PLAIN)


class Session:
    """One WebSocket with request ids, answers matched by id (they may arrive out of
    order across streams)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.early: dict[int, Json] = {}

    async def send(self, message: Json) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> Json:
        raw = await asyncio.wait_for(self.ws.recv(), RECEIVE_TIMEOUT_S)
        assert isinstance(raw, str), "JSON subprotocols answer in text frames"
        message: Json = json.loads(raw)
        return message

    async def hello(self, jwt: str | None = None) -> Json:
        await self.send({"type": "hello", "jwt": jwt})
        return await self.receive()

    async def post(self, request: Json) -> int:
        request_id = self.next_id
        self.next_id += 1
        await self.send({"type": "request", "request_id": request_id, "request": request})
        return request_id

    async def answer(self, request_id: int) -> Json:
        while request_id not in self.early:
            message = await self.receive()
            assert message["type"] in ("response_ok", "response_error"), message
            self.early[message["request_id"]] = message
        return self.early.pop(request_id)

    async def request(self, request: Json) -> Json:
        return await self.answer(await self.post(request))

    async def ok(self, request: Json) -> Json:
        message = await self.request(request)
        assert message["type"] == "response_ok", message
        response: Json = message["response"]
        assert response["type"] == request["type"]
        return response

    async def closed(self) -> int | None:
        """Wait until the server ends the connection; the close code it sent, if any.

        Fails if the server answers anything with ``response_ok`` meanwhile."""
        try:
            while True:
                message = await self.receive()
                assert message["type"] != "response_ok", f"expected a close, got {message}"
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


async def open_session(server: CompatServer, subprotocols: list[str] | None) -> Session:
    offered = [Subprotocol(name) for name in subprotocols] if subprotocols is not None else None
    ws = await connect(server.ws_url, subprotocols=offered, open_timeout=RECEIVE_TIMEOUT_S)
    return Session(ws)


def execute_on(stream_id: int, sql: str, *args: Json) -> Json:
    return {"type": "execute", "stream_id": stream_id, "stmt": stmt(sql, *args)}


@pytest.mark.parametrize(("offered", "chosen"), [
    (["hrana2", "hrana1"], "hrana2"),       # what @libsql/client offers
    (["hrana2"], "hrana2"),                 # what Python libsql-client offers
    (["hrana3", "hrana2"], "hrana3"),
    (["hrana1"], "hrana1"),
    (None, None),                           # no header: hrana1, nothing echoed
])
async def test_s32_subprotocol_negotiation(server: CompatServer, offered: list[str] | None,
                                           chosen: str | None) -> None:
    session = await open_session(server, offered)
    try:
        assert session.ws.subprotocol == chosen
        assert await session.hello() == {"type": "hello_ok"}
    finally:
        await session.ws.close()


async def test_s32_unsupported_subprotocols_are_rejected(server: CompatServer) -> None:
    with pytest.raises(InvalidStatus) as rejected:
        await open_session(server, ["hrana9", "graphql-ws"])
    assert rejected.value.response.status_code == 400


async def test_s32_no_subprotocol_behaves_as_hrana1(server: CompatServer) -> None:
    session = await open_session(server, None)
    assert await session.hello() == {"type": "hello_ok"}
    assert await session.ok({"type": "open_stream", "stream_id": 1}) == {"type": "open_stream"}
    executed = await session.ok(execute_on(1, "SELECT 1"))
    assert executed["result"]["rows"] == [[integer(1)]]
    # `sequence` only exists from hrana2 on.
    await session.post({"type": "sequence", "stream_id": 1, "sql": "SELECT 1"})
    await session.closed()


async def test_s32_repeated_hello_is_an_error_in_hrana1_only(server: CompatServer) -> None:
    hrana1 = await open_session(server, None)
    assert await hrana1.hello() == {"type": "hello_ok"}
    await hrana1.send({"type": "hello", "jwt": None})
    assert await hrana1.closed() == 1008
    hrana2 = await open_session(server, ["hrana2"])
    try:
        assert await hrana2.hello() == {"type": "hello_ok"}
        assert await hrana2.hello() == {"type": "hello_ok"}, "hrana2 may re-authenticate"
        assert await hrana2.ok({"type": "open_stream", "stream_id": 0}) == {"type": "open_stream"}
    finally:
        await hrana2.ws.close()


async def test_s32_request_before_hello_closes_1008(server: CompatServer) -> None:
    session = await open_session(server, ["hrana2"])
    await session.post({"type": "open_stream", "stream_id": 0})
    assert await session.closed() == 1008


@pytest.mark.parametrize("violation", [
    [{"type": "open_stream", "stream_id": 1}, {"type": "open_stream", "stream_id": 1}],
    [{"type": "execute", "stream_id": 42, "stmt": stmt("SELECT 1")}],
    [{"type": "store_sql", "sql_id": 1, "sql": "SELECT 1"},
     {"type": "store_sql", "sql_id": 1, "sql": "SELECT 2"}],
    [{"type": "open_stream", "stream_id": 1}, {"type": "get_autocommit", "stream_id": 1}],
], ids=["duplicate-stream-id", "unknown-stream-id", "duplicate-sql-id", "hrana3-only-on-hrana2"])
async def test_s32_protocol_violations_close_the_socket(server: CompatServer,
                                                        violation: list[Json]) -> None:
    # sqld drops the TCP connection without a close frame here; protocol.md §4.3
    # prefers close 1008. Either way the socket must end with no response_ok for it.
    session = await open_session(server, ["hrana2"])
    assert await session.hello() == {"type": "hello_ok"}
    for request in violation[:-1]:
        await session.ok(request)
    await session.post(violation[-1])
    code = await session.closed()
    assert code in (None, 1002, 1008), code


@pytest.mark.parametrize(("frame", "codes"), [
    (b'{"type": "hello"}', {1003}),          # binary frame on a JSON subprotocol
    ("{not json", {1007}),
    # sqld sends no close frame here: its reason text ("unknown variant ...") exceeds
    # the 123 bytes a close frame can carry, so it just drops the connection.
    ('{"type": "no_such_message"}', {1007, 1008}),
])
async def test_s32_undecodable_messages_close_with_a_code(server: CompatServer, frame: Any,
                                                          codes: set[int]) -> None:
    session = await open_session(server, ["hrana2"])
    assert await session.hello() == {"type": "hello_ok"}
    await session.ws.send(frame)
    assert await session.closed() in codes


async def test_s32_hrana3_get_autocommit_cursor_stored_sql_describe(
        server: CompatServer, unique: Callable[[str], str]) -> None:
    table = unique("f32_h3")
    session = await open_session(server, ["hrana3", "hrana2", "hrana1"])
    try:
        assert session.ws.subprotocol == "hrana3"
        assert await session.hello() == {"type": "hello_ok"}
        await session.ok({"type": "open_stream", "stream_id": 1})
        await session.ok(execute_on(1, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT)"))
        autocommit = await session.ok({"type": "get_autocommit", "stream_id": 1})
        assert autocommit == {"type": "get_autocommit", "is_autocommit": True}
        await session.ok(execute_on(1, "BEGIN"))
        inserted = await session.ok(execute_on(1, f"INSERT INTO {table} (v) VALUES ('a'), ('b')"))
        assert (inserted["result"]["affected_row_count"],
                inserted["result"]["last_insert_rowid"]) == (2, "2")
        autocommit = await session.ok({"type": "get_autocommit", "stream_id": 1})
        assert autocommit["is_autocommit"] is False

        await session.ok({"type": "open_cursor", "stream_id": 1, "cursor_id": 7, "batch": {
            "steps": [{"stmt": stmt(f"SELECT v FROM {table} ORDER BY id")},
                      {"stmt": stmt("SELECT no_such_column")},
                      {"stmt": stmt("SELECT 'skipped'"), "condition": {"type": "ok", "step": 1}},
                      {"stmt": stmt("SELECT 'in tx'"),
                       "condition": {"type": "not", "cond": {"type": "is_autocommit"}}}]}})
        entries: list[Json] = []
        for _ in range(20):
            fetched = await session.ok({"type": "fetch_cursor", "cursor_id": 7, "max_count": 2})
            assert len(fetched["entries"]) <= 2
            entries += fetched["entries"]
            if fetched["done"]:
                break
        assert fetched["done"] is True
        await session.ok({"type": "close_cursor", "cursor_id": 7})
        assert [entry["type"] for entry in entries] == [
            "step_begin", "row", "row", "step_end", "step_error", "step_begin", "row", "step_end"]
        assert [entry["row"] for entry in entries if entry["type"] == "row"] == [
            [{"type": "text", "value": "a"}], [{"type": "text", "value": "b"}],
            [{"type": "text", "value": "in tx"}]]
        assert entries[4]["step"] == 1 and entries[5]["step"] == 3

        await session.ok({"type": "store_sql", "sql_id": 3, "sql": f"SELECT count(*) FROM {table}"})
        by_id = await session.ok({"type": "execute", "stream_id": 1, "stmt": {"sql_id": 3}})
        assert by_id["result"]["rows"] == [[integer(2)]]
        # Stored SQL belongs to the connection: another stream can use it too.
        await session.ok({"type": "open_stream", "stream_id": 2})
        other = await session.ok({"type": "execute", "stream_id": 2, "stmt": {"sql_id": 3}})
        assert other["result"]["rows"] == [[integer(0)]], "stream 2 does not see stream 1's tx"
        await session.ok({"type": "close_stream", "stream_id": 2})
        await session.ok({"type": "close_sql", "sql_id": 3})
        described = await session.ok({"type": "describe", "stream_id": 1,
                                      "sql": f"SELECT id AS n FROM {table} WHERE v = :v"})
        assert described["result"] == {"params": [{"name": ":v"}],
                                       "cols": [{"name": "n", "decltype": "INTEGER"}],
                                       "is_explain": False, "is_readonly": True}

        failed = await session.request(execute_on(1, "SELECT * FROM f32_no_such_table"))
        assert failed["type"] == "response_error", failed
        assert failed["error"]["code"] in ("SQL_INPUT_ERROR", "SQLITE_UNKNOWN")
        batch = await session.ok({"type": "batch", "stream_id": 1, "batch": {"steps": [
            {"stmt": stmt("SELECT * FROM f32_no_such_table")},
            {"stmt": stmt("SELECT 1"), "condition": {"type": "is_autocommit"}}]}})
        assert batch["result"]["step_results"] == [None, None]
        assert batch["result"]["step_errors"][1] is None
        assert batch["result"]["step_errors"][0]["code"] in ("SQL_INPUT_ERROR", "SQLITE_UNKNOWN")
        await session.ok({"type": "close_stream", "stream_id": 1})
    finally:
        await session.ws.close()


async def test_s32_closing_a_stream_or_socket_rolls_back(server: CompatServer,
                                                         unique: Callable[[str], str]) -> None:
    table = unique("f32_rollback")
    first = await open_session(server, ["hrana2"])
    await first.hello()
    await first.ok({"type": "open_stream", "stream_id": 1})
    await first.ok(execute_on(1, f"CREATE TABLE {table} (x)"))
    await first.ok(execute_on(1, "BEGIN IMMEDIATE"))
    await first.ok(execute_on(1, f"INSERT INTO {table} VALUES ('stream closed')"))
    await first.ok({"type": "close_stream", "stream_id": 1})
    await first.ok({"type": "open_stream", "stream_id": 2})
    await first.ok(execute_on(2, "BEGIN IMMEDIATE"))
    await first.ok(execute_on(2, f"INSERT INTO {table} VALUES ('socket closed')"))
    await first.ws.close()

    second = await open_session(server, ["hrana2"])
    try:
        await second.hello()
        await second.ok({"type": "open_stream", "stream_id": 1})
        # Needs the write lock the closed socket's transaction held.
        await second.ok(execute_on(1, f"INSERT INTO {table} VALUES ('second socket')"))
        rows = await second.ok(execute_on(1, f"SELECT x FROM {table}"))
        assert rows["result"]["rows"] == [[{"type": "text", "value": "second socket"}]]
        pong = await second.ws.ping()
        await asyncio.wait_for(pong, RECEIVE_TIMEOUT_S)
    finally:
        await second.ws.close()
