"""Group C of protocol.md §11: PyPI ``libsql-client`` 0.3.1, unmodified.

- 18: ``ws://`` and ``libsql://…?tls=0`` (WebSocket, subprotocol ``hrana2``);
- 19: ``http://`` (Hrana-over-HTTP v1: ``/v1/execute``, ``/v1/batch``);
- 20: ``libsql_client.dbapi2`` over ``ws://``.
Each runs with auth off and with a valid Ed25519 JWT (A).
"""

from __future__ import annotations

from collections.abc import Callable

import libsql_client
import pytest
from libsql_client import dbapi2

from tests.compat.conftest import ServerPool
from tests.compat.expect import NO_SUCH_TABLE_CODES
from tests.compat.harness import JWT, PLAIN, AuthKeys, CompatServer

pytestmark = pytest.mark.timeout(120)

MODES = {"plain": PLAIN, "jwt": JWT}
ws_variants = pytest.mark.parametrize(
    ("transport", "mode"), [(t, m) for t in ("ws", "libsql") for m in MODES])
modes = pytest.mark.parametrize("mode", list(MODES))


def ws_url(server: CompatServer, transport: str) -> str:
    return server.ws_url if transport == "ws" else f"libsql://127.0.0.1:{server.port}?tls=0"


def client(url: str, token: str | None) -> libsql_client.Client:
    return libsql_client.create_client(url, auth_token=token)


def plain_rows(result: libsql_client.ResultSet) -> list[tuple[object, ...]]:
    return [tuple(row) for row in result.rows]


@ws_variants
async def test_s18_execute_positional_and_named(server_pool: ServerPool,
                                                unique: Callable[[str], str],
                                                transport: str, mode: str) -> None:
    server = server_pool.get(MODES[mode])
    await exercise_execute(ws_url(server, transport), server.token(), unique("c18_exec"))


async def exercise_execute(url: str, token: str | None, table: str) -> None:
    async with client(url, token) as c:
        created = await c.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT, "
                                  "v REAL, b BLOB)")
        assert (created.columns, len(created), created.rows_affected,
                created.last_insert_rowid) == ((), 0, 0, None)
        first = await c.execute(f"INSERT INTO {table} (name, v, b) VALUES (?, ?, ?)",
                                ["alice", 2.5, b"\x01\x02\x03"])
        assert (first.rows_affected, first.last_insert_rowid) == (1, 1)
        second = await c.execute(f"INSERT INTO {table} (name, v, b) VALUES (:name, @v, $b)",
                                 {"name": "bob", "v": 42, "b": b""})
        assert (second.rows_affected, second.last_insert_rowid) == (1, 2)
        selected = await c.execute(f"SELECT id, name, v, typeof(v) AS tv, b FROM {table} "
                                   "WHERE id >= ? ORDER BY id", [1])
        assert selected.columns == ("id", "name", "v", "tv", "b")
        assert plain_rows(selected) == [(1, "alice", 2.5, "real", b"\x01\x02\x03"),
                                        (2, "bob", 42.0, "real", b"")]
        assert isinstance(selected.rows[1]["v"], float)
        assert selected.rows[0]["name"] == "alice"
        values = await c.execute("SELECT ? AS big, ? AS neg, ? AS txt, NULL AS n",
                                 [2**62 + 1, -1.25, "日本語 ✓"])
        assert plain_rows(values) == [(2**62 + 1, -1.25, "日本語 ✓", None)]


@ws_variants
async def test_s18_batch(server_pool: ServerPool, unique: Callable[[str], str],
                         transport: str, mode: str) -> None:
    server = server_pool.get(MODES[mode])
    await exercise_batch(ws_url(server, transport), server.token(), unique("c18_batch"))


async def exercise_batch(url: str, token: str | None, table: str) -> None:
    async with client(url, token) as c:
        await c.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
        # The client checks that step_results and step_errors have len(stmts) + 3 entries.
        results = await c.batch([
            libsql_client.Statement(f"INSERT INTO {table} (name) VALUES (?)", ["a"]),
            libsql_client.Statement(f"INSERT INTO {table} (name) VALUES (:n)", {"n": "b"}),
            f"SELECT name FROM {table} ORDER BY id",
        ])
        assert [(r.rows_affected, r.last_insert_rowid) for r in results[:2]] == [(1, 1), (1, 2)]
        assert plain_rows(results[2]) == [("a",), ("b",)]
        with pytest.raises(libsql_client.LibsqlError) as failure:
            await c.batch([f"INSERT INTO {table} (name) VALUES ('c')",
                           f"INSERT INTO {table} (name) VALUES ('a')"])
        assert failure.value.code == "SQLITE_CONSTRAINT"
        after = await c.execute(f"SELECT name FROM {table} ORDER BY id")
        assert plain_rows(after) == [("a",), ("b",)], "the failed batch must roll back"


@ws_variants
async def test_s18_transaction_commit_and_rollback(server_pool: ServerPool,
                                                   unique: Callable[[str], str],
                                                   transport: str, mode: str) -> None:
    server = server_pool.get(MODES[mode])
    await exercise_transactions(ws_url(server, transport), server.token(), unique("c18_tx"))


async def exercise_transactions(url: str, token: str | None, table: str) -> None:
    async with client(url, token) as c, client(url, token) as other:
        await c.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
        tx = c.transaction()
        inserted = await tx.execute(f"INSERT INTO {table} (name) VALUES (?)", ["kept"])
        assert (inserted.rows_affected, inserted.last_insert_rowid) == (1, 1)
        assert plain_rows(await tx.execute(f"SELECT count(*) FROM {table}")) == [(1,)]
        assert plain_rows(await other.execute(f"SELECT count(*) FROM {table}")) == [(0,)]
        await tx.commit()
        assert tx.closed
        tx = c.transaction()
        await tx.execute(f"INSERT INTO {table} (name) VALUES ('dropped')")
        await tx.rollback()
        assert tx.closed
        names = await other.execute(f"SELECT name FROM {table} ORDER BY id")
        assert plain_rows(names) == [("kept",)]


@modes
async def test_s19_http_v1_execute_and_batch(server_pool: ServerPool,
                                             unique: Callable[[str], str], mode: str) -> None:
    # Without a token this client sends "Authorization: Bearer None"; a server with
    # auth disabled must ignore it (protocol.md §5.2), which the plain mode exercises.
    server = server_pool.get(MODES[mode])
    await exercise_http_v1(server.url, server.token(), unique("c19_http"))


async def exercise_http_v1(url: str, token: str | None, table: str) -> None:
    async with client(url, token) as c:
        await c.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT UNIQUE, v REAL)")
        first = await c.execute(f"INSERT INTO {table} (name, v) VALUES (?, ?)", ["a", 1.5])
        assert (first.rows_affected, first.last_insert_rowid) == (1, 1)
        second = await c.execute(f"INSERT INTO {table} (name, v) VALUES (:n, :v)",
                                 {"n": "b", "v": 7})
        assert (second.rows_affected, second.last_insert_rowid) == (1, 2)
        results = await c.batch([
            libsql_client.Statement(f"INSERT INTO {table} (name) VALUES (?)", ["c"]),
            f"SELECT id, name, v FROM {table} ORDER BY id",
        ])
        assert (results[0].rows_affected, results[0].last_insert_rowid) == (1, 3)
        assert results[1].columns == ("id", "name", "v")
        assert plain_rows(results[1]) == [(1, "a", 1.5), (2, "b", 7.0), (3, "c", None)]

        # /v1/execute statement errors are HTTP errors with a Hrana error JSON body.
        with pytest.raises(libsql_client.LibsqlError) as missing:
            await c.execute(f"SELECT * FROM {table}_nosuch")
        assert missing.value.code in NO_SUCH_TABLE_CODES, missing.value
        with pytest.raises(libsql_client.LibsqlError) as duplicate:
            await c.execute(f"INSERT INTO {table} (name) VALUES ('a')")
        assert duplicate.value.code == "SQLITE_CONSTRAINT", duplicate.value
        # Batch step errors stay inside step_errors; the client raises the first one.
        with pytest.raises(libsql_client.LibsqlError) as in_batch:
            await c.batch([f"INSERT INTO {table} (name) VALUES ('d')",
                           f"INSERT INTO {table} (name) VALUES ('b')"])
        assert in_batch.value.code == "SQLITE_CONSTRAINT", in_batch.value
        count = await c.execute(f"SELECT count(*) FROM {table}")
        assert plain_rows(count) == [(3,)]


@modes
def test_s20_dbapi2(server_pool: ServerPool, unique: Callable[[str], str], mode: str) -> None:
    server = server_pool.get(MODES[mode])
    exercise_dbapi2(server.ws_url, server.token(), unique("c20_dbapi"))


def exercise_dbapi2(url: str, token: str | None, table: str) -> None:
    connection = dbapi2.connect(url, auth_token=token)
    other = dbapi2.connect(url, auth_token=token)
    try:
        cursor = connection.cursor()
        cursor.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
        cursor.execute(f"INSERT INTO {table} (name, n) VALUES (?, ?)", ("a", 1))
        assert (cursor.rowcount, cursor.lastrowid) == (1, 1)
        # executemany: store_sql + one batch + close_sql
        cursor.executemany(f"INSERT INTO {table} (name, n) VALUES (?, ?)",
                           [("b", 2), ("c", 3), ("d", 4)])
        assert cursor.rowcount == 3
        connection.commit()
        other_cursor = other.cursor()
        other_cursor.execute(f"SELECT name, n FROM {table} ORDER BY id")
        assert other_cursor.fetchall() == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
        assert [column[0] for column in other_cursor.description] == ["name", "n"]

        cursor.execute(f"DELETE FROM {table} WHERE n > ?", (2,))
        assert cursor.rowcount == 2
        connection.rollback()
        cursor.execute(f"SELECT count(*) FROM {table}")
        assert cursor.fetchone() == (4,)

        # executescript: one `sequence` request
        cursor.executescript(f"""
            CREATE TABLE {table}_script (x);
            INSERT INTO {table}_script VALUES (1);
            INSERT INTO {table}_script VALUES (2);
        """)
        other_cursor.execute(f"SELECT sum(x) FROM {table}_script")
        assert other_cursor.fetchone() == (3,)

        with pytest.raises(dbapi2.IntegrityError):
            cursor.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'dup')")
        with pytest.raises(dbapi2.OperationalError):
            cursor.execute(f"SELECT * FROM {table}_nosuch")
    finally:
        connection.close()
        other.close()


def rejection(error: libsql_client.LibsqlError, status: int, code: str) -> None:
    """HTTP rejections: ``SERVER_ERROR`` + status with sqld's ``{"error":…}`` bodies, or
    the exact code when the body carries ``message``/``code`` (protocol.md §3.7)."""
    assert error.code in ("SERVER_ERROR", code), error
    if error.code == "SERVER_ERROR":
        assert f"HTTP status {status}" in str(error), error


async def test_s18_s19_auth_rejections(server_pool: ServerPool,
                                       unique: Callable[[str], str]) -> None:
    server = server_pool.get(JWT)
    keys: AuthKeys | None = server.keys
    assert keys is not None
    table = unique("c18_auth")
    async with client(server.ws_url, server.token()) as c:
        await c.execute(f"CREATE TABLE {table} (x)")
    stranger = keys.stranger.token(a="rw")
    # WebSocket: hello_error codes reach the caller (sqld resets the socket while this
    # client's requests are still in flight, so it reports a transport error instead).
    for token, code in ((None, "AUTH_HEADER_NOT_FOUND"), (stranger, "AUTH_JWT_INVALID"),
                        (keys.expired_token(), "AUTH_JWT_EXPIRED")):
        async with libsql_client.create_client(server.ws_url, auth_token=token) as c:
            with pytest.raises(libsql_client.LibsqlError) as rejected:
                await c.execute("SELECT 1")
        assert rejected.value.code == code, rejected.value
    async with libsql_client.create_client(server.ws_url, auth_token=keys.ro_token()) as c:
        assert plain_rows(await c.execute(f"SELECT count(*) FROM {table}")) == [(0,)]
        with pytest.raises(libsql_client.LibsqlError) as denied:
            await c.execute(f"INSERT INTO {table} VALUES (1)")
        assert denied.value.code != "HRANA_WEBSOCKET_ERROR", (
            "a permission error fails the statement, not the socket")
        assert plain_rows(await c.execute(f"SELECT count(*) FROM {table}")) == [(0,)]
    # HTTP v1: without a token this client sends "Bearer None", an invalid JWT.
    for token in (None, stranger):
        async with libsql_client.create_client(server.url, auth_token=token) as c:
            with pytest.raises(libsql_client.LibsqlError) as rejected:
                await c.execute("SELECT 1")
        rejection(rejected.value, 401, "AUTH_JWT_INVALID")
    async with libsql_client.create_client(server.url, auth_token=keys.ro_token()) as c:
        with pytest.raises(libsql_client.LibsqlError) as denied:
            await c.execute(f"INSERT INTO {table} VALUES (1)")
        rejection(denied.value, 403, "AUTH_PERMISSION_DENIED")
