"""Group D of protocol.md §11: PyPI ``libsql`` 0.1.11 (the Rust core), unmodified.

The client speaks Hrana 3 over HTTP only (``/v3/pipeline``, ``/v3/cursor``): it sends
``describe`` before every statement and fetches rows through a cursor only when the
described ``cols`` are non-empty, so an inaccurate describe shows up here as
``fetchall()`` returning ``None``. Runs with auth off and with a valid JWT (A).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import libsql
import pytest

from tests.compat.conftest import ServerPool
from tests.compat.harness import JWT, PLAIN, CompatServer

pytestmark = pytest.mark.timeout(120)

MODES = {"plain": PLAIN, "jwt": JWT}


@pytest.fixture(params=list(MODES))
def server(request: pytest.FixtureRequest, server_pool: ServerPool) -> CompatServer:
    return server_pool.get(MODES[request.param])


@pytest.fixture
def connect(server: CompatServer) -> Iterator[Callable[[], libsql.Connection]]:
    opened: list[libsql.Connection] = []

    def open_connection() -> libsql.Connection:
        connection = libsql.connect(database=server.url, auth_token=server.token() or "")
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()


def test_s21_select_dml_commit_rollback_executescript(
        connect: Callable[[], libsql.Connection], unique: Callable[[str], str]) -> None:
    exercise_dbapi(connect, unique("d21"))


def exercise_dbapi(connect: Callable[[], libsql.Connection], table: str) -> None:
    conn, other = connect(), connect()
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT, v REAL, b BLOB)")
    assert not conn.in_transaction

    conn.execute(f"INSERT INTO {table} (name, v, b) VALUES (?, ?, ?)",
                 ("alice", 1.5, b"\x00\xff"))
    assert conn.in_transaction, "the first DML opens an implicit transaction (BEGIN;)"
    assert other.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
    conn.commit()
    assert not conn.in_transaction
    selected = conn.execute(f"SELECT id, name, v, b, typeof(v) FROM {table}")
    assert selected.fetchall() == [(1, "alice", 1.5, b"\x00\xff", "real")]
    assert [column[0] for column in selected.description] == ["id", "name", "v", "b", "typeof(v)"]
    # A SELECT with no rows still has columns: fetchall() must be [] (not None).
    assert conn.execute(f"SELECT * FROM {table} WHERE id < 0").fetchall() == []
    assert other.execute(f"SELECT name FROM {table}").fetchall() == [("alice",)]

    conn.execute(f"INSERT INTO {table} (name) VALUES ('rolled back')")
    assert conn.in_transaction
    conn.rollback()
    assert not conn.in_transaction
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchall() == [(1,)]

    # executescript: one batch with ok-chained steps
    conn.executescript(f"CREATE TABLE {table}_s (x); INSERT INTO {table}_s VALUES (1); "
                       f"INSERT INTO {table}_s VALUES (2);")
    assert other.execute(f"SELECT sum(x), count(*) FROM {table}_s").fetchall() == [(3, 2)]

    values = conn.execute("SELECT NULL, 7, -2.5, '', x'', 'héllo ✓', 9223372036854775807")
    assert values.fetchall() == [(None, 7, -2.5, "", b"", "héllo ✓", 2**63 - 1)]
    assert conn.execute("SELECT ?, ?, ?, ?", (None, 7, "日本", b"\x01")).fetchall() == [
        (None, 7, "日本", b"\x01")]
    # (This client accepts only sequences as parameters, and binds Python ints above
    # 2**32 as floats, so neither named nor large bound integers are exercised here.)


def test_s22_errors_lastrowid_rowcount(connect: Callable[[], libsql.Connection],
                                       unique: Callable[[str], str]) -> None:
    exercise_errors_and_counts(connect, unique("d22"))


def exercise_errors_and_counts(connect: Callable[[], libsql.Connection], table: str) -> None:
    conn = connect()
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    # This client's Cursor.rowcount accumulates over the cursor's statements, so each
    # check uses a fresh cursor (Connection.execute makes one).
    cursor = conn.execute(f"INSERT INTO {table} (name) VALUES (?)", ("a",))
    assert (cursor.lastrowid, cursor.rowcount) == (1, 1)
    cursor = conn.cursor()
    cursor.executemany(f"INSERT INTO {table} (name) VALUES (?)", [("b",), ("c",), ("d",)])
    assert (cursor.lastrowid, cursor.rowcount) == (4, 3)
    cursor = conn.execute(f"UPDATE {table} SET name = name || '!' WHERE id > ?", (1,))
    assert cursor.rowcount == 3
    assert conn.execute(f"DELETE FROM {table} WHERE id = 4").rowcount == 1
    conn.commit()
    assert conn.execute(f"SELECT name FROM {table} ORDER BY id").fetchall() == [
        ("a",), ("b!",), ("c!",)]

    with pytest.raises(ValueError, match="no such table"):
        conn.execute(f"SELECT * FROM {table}_nosuch")
    with pytest.raises(ValueError, match="SQLITE_CONSTRAINT"):
        conn.execute(f"INSERT INTO {table} (name) VALUES ('a')")
    conn.rollback()
    with pytest.raises(ValueError):
        conn.execute("SELEC 1")
    # The connection keeps working after errors.
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchall() == [(3,)]


LARGE_SQL = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 20000) "
             "SELECT x, 'row ' || x FROM n")


def test_s21_large_result_through_the_cursor(connect: Callable[[], libsql.Connection]) -> None:
    rows = connect().execute(LARGE_SQL).fetchall()
    assert len(rows) == 20000
    assert (rows[0], rows[-1]) == ((1, "row 1"), (20000, "row 20000"))
    assert sum(x for x, _ in rows) == 20000 * 20001 // 2


def test_s21_auth_rejections(server_pool: ServerPool, unique: Callable[[str], str]) -> None:
    server = server_pool.get(JWT)
    assert server.keys is not None
    table = unique("d21_auth")
    owner = libsql.connect(database=server.url, auth_token=server.token() or "")
    try:
        owner.execute(f"CREATE TABLE {table} (x)")
    finally:
        owner.close()
    # This client turns every non-200 answer into ValueError("... status=<code> ...").
    for token in ("", server.keys.stranger.token(a="rw"), server.keys.expired_token()):
        with pytest.raises(ValueError, match="401"):
            libsql.connect(database=server.url, auth_token=token).execute("SELECT 1")
    reader = libsql.connect(database=server.url, auth_token=server.keys.ro_token())
    try:
        assert reader.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
        with pytest.raises(ValueError, match="403"):
            reader.execute(f"INSERT INTO {table} VALUES (1)")
    finally:
        reader.close()
