"""Streams with a ``base_url`` (protocol.md §3.6): a server started with its own URL
(edgelite ``--self-url``, sqld ``--http-self-url``) returns it in every pipeline and
cursor head, and the clients send the rest of the stream there. This is the hook a
cluster uses for sticky streams, so the clients' stream paths (transactions, stored
SQL, cursors) are exercised against it with real clients.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import libsql
import pytest
import turso_serverless

from tests.compat.conftest import ServerPool
from tests.compat.expect import ok
from tests.compat.harness import SELF_URL, CompatServer, run_node
from tests.compat.wire import CLOSE, cursor_lines, execute, pipeline_ok, step

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(SELF_URL)


def test_base_url_in_pipeline_and_cursor_heads(server: CompatServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for version in (2, 3):
            body = pipeline_ok(http, [execute("SELECT 1")], version=version)
            assert body["base_url"] == server.url
            closed = pipeline_ok(http, [CLOSE], body["baton"], version=version)
            assert closed["base_url"] == server.url and closed["baton"] is None
        cursor = http.post("/v3/cursor", json={"batch": {"steps": [step("SELECT 1")]}})
        head = cursor_lines(cursor)[0]
        assert head["base_url"] == server.url
        pipeline_ok(http, [CLOSE], head["baton"])


@pytest.mark.usefixtures("node")
@pytest.mark.parametrize("transport", ["http", "libsql"])
def test_libsql_client_streams_follow_base_url(server: CompatServer, transport: str,
                                               unique: Callable[[str], str]) -> None:
    url = {"http": server.url, "libsql": f"libsql://127.0.0.1:{server.port}?tls=0"}[transport]
    results = run_node("libsql_client.mjs", {
        "url": url, "authToken": None, "prefix": unique(f"b_{transport}") + "_",
        "distinctSql": 40, "scenarios": ["s06_sql_cache", "s07_transactions"]})
    cache = ok(results, "s06_sql_cache")
    assert cache["seen"] == [[i, 80] for i in range(40)]
    assert cache["total"] == [[80, sum(range(40)) + sum(range(100, 140))]]
    transactions = ok(results, "s07_transactions")
    assert transactions["afterCommit"] == {"closed": True, "names": [["committed"]]}
    assert transactions["afterRollback"] == {"closed": True, "names": [["committed"]]}
    assert transactions["afterClose"] == {"closed": True,
                                          "names": [["committed"], ["after close"]]}


def test_python_clients_follow_base_url(server: CompatServer,
                                        unique: Callable[[str], str]) -> None:
    table = unique("b_py")
    conn = turso_serverless.connect(server.url)
    other = libsql.connect(database=server.url, auth_token="")
    try:
        conn.execute(f"CREATE TABLE {table} (x)")
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert conn.in_transaction
        conn.commit()
        conn.execute(f"INSERT INTO {table} VALUES (2)")
        conn.rollback()
        other.execute(f"INSERT INTO {table} VALUES (3)")
        assert other.in_transaction
        other.commit()
        rows = conn.execute(f"SELECT x FROM {table} ORDER BY x").fetchall()
        assert rows == [(1,), (3,)]
        assert other.execute(f"SELECT count(*) FROM {table}").fetchall() == [(2,)]
    finally:
        conn.close()
        other.close()
