"""Group E of protocol.md §11: PyPI ``turso-serverless`` 0.1.0 and npm
``@tursodatabase/serverless`` 1.4.0, unmodified.

Both keep one stream (baton) for the connection's whole life, append an
``is_autocommit`` probe step to every cursor batch and end pipelines with
``get_autocommit``, so ``in_transaction``/``inTransaction`` is only right when the
server's conditions and autocommit answers are exact. 23-24 run with auth off and
with a JWT (A); 25 runs against a server with a short stream expiry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import turso_serverless

from tests.compat.conftest import ServerPool
from tests.compat.expect import NO_SUCH_TABLE_CODES, ok
from tests.compat.harness import JWT, PLAIN, SHORT_EXPIRY, CompatServer, run_node

pytestmark = pytest.mark.timeout(180)

MODES = {"plain": PLAIN, "jwt": JWT}


@pytest.fixture(params=list(MODES))
def server(request: pytest.FixtureRequest, server_pool: ServerPool) -> CompatServer:
    return server_pool.get(MODES[request.param])


@pytest.fixture
def connect(server: CompatServer) -> Iterator[Callable[[], turso_serverless.Connection]]:
    opened: list[turso_serverless.Connection] = []

    def open_connection() -> turso_serverless.Connection:
        connection = turso_serverless.connect(server.url, auth_token=server.token())
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()


def test_s23_python_dbapi(connect: Callable[[], turso_serverless.Connection],
                          unique: Callable[[str], str]) -> None:
    exercise_dbapi(connect, unique("e23"))


def exercise_dbapi(connect: Callable[[], turso_serverless.Connection], table: str) -> None:
    conn, other = connect(), connect()
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT UNIQUE, v REAL, b BLOB)")
    assert not conn.in_transaction

    cursor = conn.execute(f"INSERT INTO {table} (name, v, b) VALUES (?, ?, ?)",
                          ("alice", 1.5, b"\x01\x02"))
    assert conn.in_transaction, "DML opens an implicit BEGIN DEFERRED"
    assert (cursor.lastrowid, cursor.rowcount) == (1, 1)
    assert other.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
    conn.commit()
    assert not conn.in_transaction
    assert other.execute(f"SELECT count(*) FROM {table}").fetchall() == [(1,)]

    conn.execute(f"INSERT INTO {table} (name) VALUES (:name)", {"name": "dropped"})
    assert conn.in_transaction
    conn.rollback()
    assert not conn.in_transaction

    cursor = conn.cursor()
    cursor.executemany(f"INSERT INTO {table} (name, v) VALUES (?, ?)",
                       [("b", 2), ("c", 3.25), ("d", None)])
    assert cursor.rowcount == 3
    assert conn.in_transaction
    conn.commit()
    assert not conn.in_transaction

    selected = conn.execute(f"SELECT id, name, v, b FROM {table} ORDER BY id")
    assert [column[0] for column in selected.description] == ["id", "name", "v", "b"]
    assert selected.fetchone() == (1, "alice", 1.5, b"\x01\x02")
    assert selected.fetchall() == [(2, "b", 2.0, None), (3, "c", 3.25, None), (4, "d", None, None)]
    assert conn.execute(f"SELECT * FROM {table} WHERE id < 0").fetchall() == []

    conn.executescript(f"CREATE TABLE {table}_s (x); INSERT INTO {table}_s VALUES (1); "
                       f"INSERT INTO {table}_s VALUES (2);")
    assert not conn.in_transaction
    assert other.execute(f"SELECT sum(x) FROM {table}_s").fetchall() == [(3,)]

    # An explicit BEGIN is only visible through the server's autocommit answer.
    conn.execute("BEGIN IMMEDIATE")
    assert conn.in_transaction
    conn.execute(f"UPDATE {table} SET v = 0")
    conn.execute("COMMIT")
    assert not conn.in_transaction

    with pytest.raises(turso_serverless.IntegrityError):
        conn.execute(f"INSERT INTO {table} (name) VALUES ('alice')")
    conn.rollback()
    with pytest.raises(turso_serverless.OperationalError, match="no such table"):
        conn.execute(f"SELECT * FROM {table}_nosuch")
    assert not conn.in_transaction
    values = conn.execute("SELECT ?, ?, ?, ?, ?", (2**62 + 1, -0.5, "日本 ✓", b"", None))
    assert values.fetchall() == [(2**62 + 1, -0.5, "日本 ✓", b"", None)]


def test_s23_large_result_through_the_cursor(
        connect: Callable[[], turso_serverless.Connection]) -> None:
    rows = connect().execute(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 20000) "
        "SELECT x, 'row ' || x FROM n").fetchall()
    assert len(rows) == 20000
    assert (rows[0], rows[-1]) == ((1, "row 1"), (20000, "row 20000"))


def test_s23_close_releases_the_stream(server: CompatServer, unique: Callable[[str], str]) -> None:
    table = unique("e23close")
    before = len(server.live_streams())
    conn = turso_serverless.connect(server.url, auth_token=server.token())
    conn.execute(f"CREATE TABLE {table} (x)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert conn.in_transaction
    conn.close()
    server.assert_no_new_streams(before)
    check = turso_serverless.connect(server.url, auth_token=server.token())
    try:
        assert check.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
    finally:
        check.close()


def test_s23_auth_rejections(server_pool: ServerPool, unique: Callable[[str], str]) -> None:
    server = server_pool.get(JWT)
    assert server.keys is not None
    table = unique("e23_auth")
    owner = turso_serverless.connect(server.url, auth_token=server.token())
    try:
        owner.execute(f"CREATE TABLE {table} (x)")
    finally:
        owner.close()
    for token in (None, server.keys.stranger.token(a="rw"), server.keys.expired_token()):
        rejected = turso_serverless.connect(server.url, auth_token=token)
        with pytest.raises(turso_serverless.OperationalError, match="HTTP status 401"):
            rejected.execute("SELECT 1")
        rejected.close()
    reader = turso_serverless.connect(server.url, auth_token=server.keys.ro_token())
    try:
        assert reader.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
        # sqld answers the cursor request 200 and then cuts the body (IncompleteRead).
        with pytest.raises(turso_serverless.OperationalError, match="HTTP status 403"):
            reader.execute(f"CREATE TABLE {table}_denied (x)")
    finally:
        reader.close()


def js_config(server: CompatServer, prefix: str, scenarios: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {"url": server.url, "authToken": server.token(), "prefix": prefix,
                              "scenarios": scenarios}
    if server.keys is not None:
        config["tokens"] = server.keys.script_tokens()
    return config


@pytest.mark.usefixtures("node")
def test_s24_js_statements(server: CompatServer, unique: Callable[[str], str]) -> None:
    seen = ok(run_node("turso_serverless.mjs",
                       js_config(server, unique("e24") + "_", ["s24_statements"])),
              "s24_statements")
    assert seen["first"] == {"changes": 1, "lastInsertRowid": 1}
    assert seen["second"] == {"changes": 1, "lastInsertRowid": 2}
    assert seen["got"] == {"id": 1, "name": "alice", "v": 1.5, "tv": "real",
                           "b": {"$bytes": [7, 8]}}
    assert seen["missing"] is None
    assert seen["all"] == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]
    # prepare() = a pipeline `describe`: names, aliases and declared types.
    assert seen["columns"] == [{"name": "id", "type": "INTEGER"}, {"name": "label", "type": "TEXT"},
                               {"name": "twice", "type": None}]
    assert seen["prepared"] == [{"id": 2, "label": "bob", "twice": 84}]
    assert seen["raw"] == [["alice"], ["bob"]]
    assert seen["pluck"] == 2
    assert seen["runPrepared"] == {"changes": 1, "lastInsertRowid": 3}
    assert seen["updated"] == {"changes": 2, "lastInsertRowid": {"$undefined": True}}
    assert seen["execSum"] == {"s": 3}
    assert seen["noSuchTable"]["name"] == "DatabaseError"
    assert seen["noSuchTable"].get("code") in NO_SUCH_TABLE_CODES, seen["noSuchTable"]
    assert seen["unique"]["code"] == "SQLITE_CONSTRAINT", seen["unique"]
    assert seen["afterErrors"] == {"n": 3}


@pytest.mark.usefixtures("node")
def test_s24_js_batch_and_transactions(server: CompatServer, unique: Callable[[str], str]) -> None:
    seen = ok(run_node("turso_serverless.mjs",
                       js_config(server, unique("e24tx") + "_", ["s24_batch_and_transactions"])),
              "s24_batch_and_transactions")
    assert seen["batch"] == [
        {"columns": [], "rows": [], "rowsAffected": 1},
        {"columns": [], "rows": [], "rowsAffected": 1},
        {"columns": ["name"], "rows": [{"name": "a"}, {"name": "b"}], "rowsAffected": 0}]
    assert seen["failedBatch"]["code"] == "SQLITE_CONSTRAINT", seen["failedBatch"]
    assert seen["afterFailedBatch"] == [{"name": "a"}, {"name": "b"}]
    assert seen["inTxDuring"] is True
    assert seen["rollbackError"]["message"] == "abort on purpose"
    assert seen["afterTransaction"] == {
        "inTransaction": False, "names": [{"name": "a"}, {"name": "b"}, {"name": "d"}]}
    assert seen["isolation"] == {"inside": {"n": 4}, "outside": {"n": 3}}
    assert seen["asyncRollbackError"]["message"] == "abort on purpose"
    assert seen["final"] == [{"name": "a"}, {"name": "b"}, {"name": "d"}, {"name": "e"}]


@pytest.mark.usefixtures("node")
def test_s24_js_close_sends_close(server: CompatServer, unique: Callable[[str], str]) -> None:
    before = len(server.live_streams())
    seen = ok(run_node("turso_serverless.mjs",
                       js_config(server, unique("e24close") + "_", ["s24_close"])), "s24_close")
    assert seen == {"inTransaction": True, "after": {"n": 0}}
    server.assert_no_new_streams(before)


@pytest.mark.usefixtures("node")
def test_s24_js_auth(server_pool: ServerPool, unique: Callable[[str], str]) -> None:
    server = server_pool.get(JWT)
    seen = ok(run_node("turso_serverless.mjs",
                       js_config(server, unique("e24auth") + "_", ["s24_auth"])), "s24_auth")

    def rejected(outcome: dict[str, Any], status: int, reason: str) -> None:
        # The driver reports the body's message when there is one, else the status.
        error = outcome["error"]
        assert error["name"] == "DatabaseError", error
        assert f"status: {status}" in error["message"] or reason in error["message"], error

    rejected(seen["missing"], 401, "Expected authorization header")
    rejected(seen["stranger"], 401, "JWT is invalid")
    rejected(seen["expired"], 401, "JWT has expired")
    assert seen["rotated"] == {"rows": [{"one": 1}]}
    assert seen["readOnlySelect"] == {"rows": [{"n": 0}]}
    rejected(seen["readOnlyInsert"], 403, "Authorization forbidden")
    assert seen["after"] == {"n": 0}


def test_s25_python_pause_longer_than_stream_expiry(server_pool: ServerPool,
                                                    unique: Callable[[str], str]) -> None:
    server = server_pool.get(SHORT_EXPIRY)
    table = unique("e25")
    pause_s = server.stream_expiry_s + 1.5
    conn = turso_serverless.connect(server.url, auth_token=server.token())
    try:
        conn.execute(f"CREATE TABLE {table} (x)")
        assert conn.execute("SELECT 1").fetchall() == [(1,)]
        time.sleep(pause_s)
        with pytest.raises(turso_serverless.OperationalError):
            conn.execute("SELECT 2")
        assert conn.execute("SELECT 3").fetchall() == [(3,)], "the next call opens a new stream"

        conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert conn.in_transaction
        time.sleep(pause_s)
        with pytest.raises(turso_serverless.OperationalError):
            conn.execute(f"INSERT INTO {table} VALUES (2)")
        assert not conn.in_transaction
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)], (
            "the expired transaction was rolled back")
    finally:
        conn.close()


@pytest.mark.usefixtures("node")
def test_s25_js_pause_longer_than_stream_expiry(server_pool: ServerPool,
                                                unique: Callable[[str], str]) -> None:
    server = server_pool.get(SHORT_EXPIRY)
    config = js_config(server, unique("e25js") + "_", ["s25_stream_expiry"])
    config["expirySleepMs"] = int((server.stream_expiry_s + 1.5) * 1000)
    seen = ok(run_node("turso_serverless.mjs", config), "s25_stream_expiry")
    assert seen["before"] == {"one": 1}
    assert seen["afterPause"]["name"] == "DatabaseError", seen["afterPause"]
    assert seen["afterPause"].get("code", "STREAM_EXPIRED") == "STREAM_EXPIRED", seen["afterPause"]
    assert seen["recovered"] == {"three": 3}
    assert seen["txAfterPause"]["name"] == "DatabaseError", seen["txAfterPause"]
    assert seen["inTransaction"] is False
    assert seen["rows"] == {"n": 0}
