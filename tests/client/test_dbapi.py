"""PEP 249 behaviour, the same in every mode (remote HTTP, remote WebSocket, local file).

Each test states one thing ``sqlite3`` users rely on; the ``conn`` fixture is
parametrized over the three modes, against a real server process for the remote ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import edgelite
import edgelite.client
from edgelite.errors import EdgeliteError


def test_module_globals() -> None:
    assert edgelite.apilevel == "2.0"
    assert edgelite.threadsafety == 1
    assert edgelite.paramstyle == "qmark"
    assert edgelite.sqlite_version_info >= (3, 35, 0)
    for name in ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError",
                 "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
                 "NotSupportedError"):
        assert issubclass(getattr(edgelite, name), Exception)


def test_exception_tree_is_pep_249_and_rooted_in_edgelite_error() -> None:
    assert issubclass(edgelite.Error, EdgeliteError)
    assert issubclass(edgelite.InterfaceError, edgelite.Error)
    assert issubclass(edgelite.DatabaseError, edgelite.Error)
    for name in ("DataError", "OperationalError", "IntegrityError", "InternalError",
                 "ProgrammingError", "NotSupportedError"):
        assert issubclass(getattr(edgelite, name), edgelite.DatabaseError)
    assert not issubclass(edgelite.Warning, edgelite.Error)


def test_select_description_and_fetch(conn: edgelite.Connection, table: str) -> None:
    cur = conn.cursor()
    cur.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(10), "
                "score REAL, data BLOB)")
    cur.executemany(f"INSERT INTO {table} (name, score, data) VALUES (?, ?, ?)",
                    [("a", 1.5, b"\x00"), ("b", None, None), ("c", 3.0, b"xy")])
    conn.commit()
    cur.execute(f"SELECT id, name, score, data, id * 2 AS twice FROM {table} ORDER BY id")
    assert [d[0] for d in cur.description] == ["id", "name", "score", "data", "twice"]
    assert [d[1] for d in cur.description] == ["INTEGER", "VARCHAR(10)", "REAL", "BLOB", None]
    assert all(len(d) == 7 for d in cur.description)
    assert cur.description[0][1] == edgelite.NUMBER
    assert cur.description[1][1] == edgelite.STRING
    assert cur.description[3][1] == edgelite.BINARY
    assert cur.rowcount == -1
    assert cur.fetchone() == (1, "a", 1.5, b"\x00", 2)
    cur.arraysize = 1
    assert cur.fetchmany() == [(2, "b", None, None, 4)]
    assert cur.fetchall() == [(3, "c", 3.0, b"xy", 6)]
    assert cur.fetchone() is None
    assert cur.fetchmany(5) == []
    assert cur.fetchall() == []


def test_iteration_and_fetchmany_sizes(conn: edgelite.Connection) -> None:
    cur = conn.execute("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
                       "WHERE x < 7) SELECT x FROM n")
    cur.arraysize = 3
    assert cur.fetchmany() == [(1,), (2,), (3,)]
    assert cur.fetchmany(2) == [(4,), (5,)]
    assert list(cur) == [(6,), (7,)]


def test_statement_without_rows_has_no_description(conn: edgelite.Connection,
                                                   table: str) -> None:
    cur = conn.execute(f"CREATE TABLE {table} (x)")
    assert cur.description is None
    assert cur.rowcount == -1
    assert cur.fetchall() == []


def test_rowcount_and_lastrowid(conn: edgelite.Connection, table: str) -> None:
    cur = conn.cursor()
    assert cur.lastrowid is None
    cur.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v)")
    cur.execute(f"INSERT INTO {table} (v) VALUES (?)", ("x",))
    assert (cur.rowcount, cur.lastrowid) == (1, 1)
    cur.execute(f"INSERT INTO {table} (id, v) VALUES (41, 'y')")
    assert cur.lastrowid == 41
    cur.execute(f"REPLACE INTO {table} (id, v) VALUES (41, 'z')")
    assert cur.lastrowid == 41
    cur.execute(f"UPDATE {table} SET v = 'w'")
    assert cur.rowcount == 2
    cur.execute(f"DELETE FROM {table} WHERE id = 1")
    assert cur.rowcount == 1
    cur.execute(f"SELECT * FROM {table}")
    assert cur.rowcount == -1
    assert cur.lastrowid == 41  # like sqlite3: the connection's last insert rowid
    cur.executemany(f"INSERT INTO {table} (v) VALUES (?)", [("a",), ("b",), ("c",)])
    assert cur.rowcount == 3


def test_insert_returning(conn: edgelite.Connection, table: str) -> None:
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT)")
    cur = conn.execute(f"INSERT INTO {table} (v) VALUES ('a'), ('b') RETURNING id, v")
    assert cur.fetchall() == [(1, "a"), (2, "b")]
    assert [d[0] for d in cur.description] == ["id", "v"]
    assert cur.rowcount == 2


def test_parameter_styles(conn: edgelite.Connection) -> None:
    assert conn.execute("SELECT ?, ?", (1, "a")).fetchone() == (1, "a")
    assert conn.execute("SELECT ?2, ?1", [1, 2]).fetchone() == (2, 1)
    assert conn.execute("SELECT :a, :b", {"a": 1, "b": 2}).fetchone() == (1, 2)
    assert conn.execute("SELECT @a, $b", {"a": 3, "b": 4}).fetchone() == (3, 4)
    assert conn.execute("SELECT :a || :a", {"a": "x"}).fetchone() == ("xx",)
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_parameter_errors_are_programming_errors(conn: edgelite.Connection) -> None:
    with pytest.raises(edgelite.ProgrammingError):
        conn.execute("SELECT ?", (1, 2))
    with pytest.raises(edgelite.ProgrammingError):
        conn.execute("SELECT ?, ?", (1,))
    with pytest.raises(edgelite.ProgrammingError):
        conn.execute("SELECT :a", {"b": 1})
    with pytest.raises(edgelite.ProgrammingError, match="type 'dict' is not supported"):
        conn.execute("SELECT ?", ({},))
    with pytest.raises(edgelite.ProgrammingError, match="type 'object'"):
        conn.execute("SELECT ?", (object(),))
    with pytest.raises(edgelite.ProgrammingError, match="unsupported type"):
        conn.execute("SELECT ?", 3)
    with pytest.raises(OverflowError):
        conn.execute("SELECT ?", (2**63,))
    with pytest.raises(edgelite.DataError):
        conn.execute("SELECT ?", (-(2**63) - 1,))


def test_value_adaptation(conn: edgelite.Connection) -> None:
    row = conn.execute("SELECT ?, ?, ?, ?, ?, ?, typeof(?)",
                       (True, False, bytearray(b"ab"), memoryview(b"cd"), None, 2.0, 2.0)
                       ).fetchone()
    assert row == (1, 0, b"ab", b"cd", None, 2.0, "real")


def test_register_adapter(conn: edgelite.Connection) -> None:
    class Point:
        def __init__(self, x: int, y: int) -> None:
            self.x, self.y = x, y

    edgelite.client.register_adapter(Point, lambda p: f"{p.x};{p.y}")
    try:
        assert conn.execute("SELECT ?", (Point(1, 2),)).fetchone() == ("1;2",)
    finally:
        edgelite.client.adapters.clear()


def test_one_statement_per_execute(conn: edgelite.Connection) -> None:
    with pytest.raises(edgelite.ProgrammingError):
        conn.execute("SELECT 1; SELECT 2")
    assert conn.execute("SELECT 1;").fetchall() == [(1,)]
    cur = conn.execute("  -- nothing here\n ")
    assert cur.description is None and cur.fetchall() == []


def test_sql_errors_map_like_sqlite3(conn: edgelite.Connection, table: str) -> None:
    with pytest.raises(edgelite.OperationalError, match="no such table") as no_table:
        conn.execute(f"SELECT * FROM {table}_missing")
    assert no_table.value.sqlite_errorname == "SQLITE_ERROR"
    with pytest.raises(edgelite.OperationalError, match="syntax error"):
        conn.execute("SELEC 1")
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v NOT NULL)")
    conn.execute(f"INSERT INTO {table} VALUES (1, 'a')")
    with pytest.raises(edgelite.IntegrityError, match="UNIQUE constraint failed") as dup:
        conn.execute(f"INSERT INTO {table} VALUES (1, 'b')")
    assert dup.value.code == "SQLITE_CONSTRAINT"
    assert dup.value.sqlite_errorcode == 19
    with pytest.raises(edgelite.IntegrityError, match="NOT NULL"):
        conn.execute(f"INSERT INTO {table} VALUES (2, NULL)")
    conn.rollback()


def test_implicit_begin_before_dml_and_commit(connect: Callable[..., edgelite.Connection],
                                              table: str) -> None:
    writer, reader = connect(), connect()
    writer.execute(f"CREATE TABLE {table} (v)")
    assert not writer.in_transaction  # DDL does not open a transaction (sqlite3 >= 3.6)
    writer.execute(f"INSERT INTO {table} VALUES (1)")
    assert writer.in_transaction
    assert reader.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    writer.commit()
    assert not writer.in_transaction
    assert reader.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)


def test_rollback_discards(conn: edgelite.Connection, table: str) -> None:
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    conn.rollback()
    assert not conn.in_transaction
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    conn.rollback()  # nothing to roll back: a no-op
    conn.commit()


def test_context_manager_commits_or_rolls_back(conn: edgelite.Connection, table: str) -> None:
    conn.execute(f"CREATE TABLE {table} (v UNIQUE)")
    with conn:
        conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert not conn.in_transaction
    with pytest.raises(edgelite.IntegrityError), conn:
        conn.execute(f"INSERT INTO {table} VALUES (2)")
        conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert conn.execute(f"SELECT v FROM {table}").fetchall() == [(1,)]


def test_connection_survives_uncommitted_close(connect: Callable[..., edgelite.Connection],
                                               table: str) -> None:
    first = connect()
    first.execute(f"CREATE TABLE {table} (v)")
    first.execute(f"INSERT INTO {table} VALUES (1)")
    first.close()  # not committed: rolled back
    second = connect()
    assert second.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_isolation_level_none_is_autocommit(connect: Callable[..., edgelite.Connection],
                                            table: str) -> None:
    conn, other = connect(isolation_level=None), connect()
    assert conn.isolation_level is None
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert not conn.in_transaction
    assert other.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
    conn.execute("BEGIN")
    assert conn.in_transaction
    conn.execute(f"INSERT INTO {table} VALUES (2)")
    assert other.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
    conn.execute("COMMIT")
    assert not conn.in_transaction
    assert other.execute(f"SELECT count(*) FROM {table}").fetchone() == (2,)


def test_isolation_level_immediate(connect: Callable[..., edgelite.Connection],
                                   table: str) -> None:
    conn = connect(isolation_level="IMMEDIATE")
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert conn.in_transaction
    conn.commit()
    conn.isolation_level = None
    conn.execute(f"INSERT INTO {table} VALUES (2)")
    assert not conn.in_transaction


def test_autocommit_true(connect: Callable[..., edgelite.Connection], table: str) -> None:
    conn, other = connect(autocommit=True), connect()
    assert conn.autocommit is True
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert not conn.in_transaction
    conn.rollback()  # a no-op in autocommit mode
    assert other.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)


def test_autocommit_false_always_in_transaction(connect: Callable[..., edgelite.Connection],
                                                table: str) -> None:
    conn, other = connect(autocommit=False), connect()
    assert conn.autocommit is False and conn.in_transaction
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert other.execute(f"SELECT count(*) FROM sqlite_master WHERE name = '{table}'"
                         ).fetchone() == (0,)  # even the DDL is inside the transaction
    conn.commit()
    assert conn.in_transaction
    assert other.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
    conn.autocommit = True
    conn.execute(f"INSERT INTO {table} VALUES (2)")
    assert other.execute(f"SELECT count(*) FROM {table}").fetchone() == (2,)
    assert edgelite.connect(":memory:", autocommit=edgelite.client.LEGACY_TRANSACTION_CONTROL
                            ).autocommit == -1


def test_savepoints(conn: edgelite.Connection, table: str) -> None:
    conn.isolation_level = None
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute("SAVEPOINT outer_sp")
    assert conn.in_transaction
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    conn.execute("SAVEPOINT inner_sp")
    conn.execute(f"INSERT INTO {table} VALUES (2)")
    conn.execute("ROLLBACK TO inner_sp")
    assert conn.in_transaction
    conn.execute("RELEASE outer_sp")
    assert not conn.in_transaction
    assert conn.execute(f"SELECT v FROM {table}").fetchall() == [(1,)]


def test_executemany_is_atomic_until_commit(conn: edgelite.Connection, table: str) -> None:
    conn.execute(f"CREATE TABLE {table} (v UNIQUE)")
    rows = [(i,) for i in range(2500)]  # more than one batch request
    cur = conn.executemany(f"INSERT INTO {table} VALUES (?)", rows)
    assert cur.rowcount == 2500
    conn.commit()
    with pytest.raises(edgelite.IntegrityError):
        conn.executemany(f"INSERT INTO {table} VALUES (?)", [(5000,), (7,), (5001,)])
    assert conn.in_transaction  # the failure does not end the transaction (as sqlite3)
    conn.commit()
    assert conn.execute(f"SELECT count(*), max(v) FROM {table}").fetchone() == (2501, 5000)


def test_executemany_named_and_generator(conn: edgelite.Connection, table: str) -> None:
    conn.execute(f"CREATE TABLE {table} (a, b)")
    conn.executemany(f"INSERT INTO {table} VALUES (:a, :b)",
                     ({"a": i, "b": str(i)} for i in range(3)))
    assert conn.execute(f"SELECT a, b FROM {table} ORDER BY a").fetchall() == [
        (0, "0"), (1, "1"), (2, "2")]
    assert conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", []).rowcount == 0


def test_executemany_refuses_queries(conn: edgelite.Connection) -> None:
    with pytest.raises(edgelite.ProgrammingError, match="DML"):
        conn.executemany("SELECT ?", [(1,)])


def test_executescript(conn: edgelite.Connection, table: str) -> None:
    conn.execute(f"CREATE TABLE {table}_pending (v)")
    conn.execute(f"INSERT INTO {table}_pending VALUES (1)")
    assert conn.in_transaction
    cur = conn.executescript(f"""
        CREATE TABLE {table} (v);
        INSERT INTO {table} VALUES (1);
        INSERT INTO {table} VALUES (2);
    """)
    assert cur.description is None
    assert not conn.in_transaction  # the pending transaction was committed first
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (2,)
    assert conn.execute(f"SELECT count(*) FROM {table}_pending").fetchone() == (1,)
    with pytest.raises(edgelite.OperationalError):
        conn.executescript(f"INSERT INTO {table} VALUES (3); INSERT INTO nosuch VALUES (1);")
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (3,)
    conn.executescript(f"BEGIN; INSERT INTO {table} VALUES (4);")
    assert conn.in_transaction
    conn.rollback()
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (3,)


def test_row_factory_row(conn: edgelite.Connection) -> None:
    conn.row_factory = edgelite.Row
    row = conn.execute("SELECT 1 AS id, 'x' AS Name").fetchone()
    assert isinstance(row, edgelite.Row)
    assert row["id"] == 1 and row["name"] == "x" and row["NAME"] == "x" and row[1] == "x"
    assert row.keys() == ["id", "Name"]
    assert tuple(row) == (1, "x") and len(row) == 2
    assert dict(zip(row.keys(), row, strict=True)) == {"id": 1, "Name": "x"}
    with pytest.raises(IndexError):
        row["missing"]
    assert row == conn.execute("SELECT 1 AS id, 'x' AS Name").fetchone()


def test_row_factory_callable_per_cursor(conn: edgelite.Connection) -> None:
    def as_dict(cursor: edgelite.Cursor, row: tuple[object, ...]) -> dict[str, object]:
        return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}

    cur = conn.cursor()
    cur.row_factory = as_dict
    assert cur.execute("SELECT 1 AS a, 2 AS b").fetchall() == [{"a": 1, "b": 2}]
    assert conn.execute("SELECT 1 AS a").fetchone() == (1,)


def test_text_factory_bytes(conn: edgelite.Connection) -> None:
    conn.text_factory = bytes
    assert conn.execute("SELECT 'é', 1").fetchone() == ("é".encode(), 1)


def test_closed_objects(connect: Callable[..., edgelite.Connection]) -> None:
    conn = connect()
    cur = conn.cursor()
    cur.close()
    with pytest.raises(edgelite.ProgrammingError, match="closed cursor"):
        cur.execute("SELECT 1")
    conn.close()
    conn.close()  # closing twice is fine
    with pytest.raises(edgelite.ProgrammingError, match="closed database"):
        conn.execute("SELECT 1")
    with pytest.raises(edgelite.ProgrammingError):
        conn.commit()


def test_check_same_thread(connect: Callable[..., edgelite.Connection]) -> None:
    strict, relaxed = connect(), connect(check_same_thread=False)
    errors: list[BaseException] = []
    results: list[object] = []

    def use() -> None:
        try:
            strict.execute("SELECT 1")
        except edgelite.ProgrammingError as exc:
            errors.append(exc)
        results.append(relaxed.execute("SELECT 2").fetchone())

    worker = threading.Thread(target=use)
    worker.start()
    worker.join()
    assert len(errors) == 1 and "same thread" in str(errors[0])
    assert results == [(2,)]


def test_create_function_local_only(conn: edgelite.Connection, mode: str) -> None:
    if mode == "local":
        conn.create_function("twice", 1, lambda x: x * 2, deterministic=True)
        assert conn.execute("SELECT twice(21)").fetchone() == (42,)
    else:
        with pytest.raises(edgelite.NotSupportedError):
            conn.create_function("twice", 1, lambda x: x * 2)


def test_unknown_url_parameter_and_bad_consistency() -> None:
    with pytest.raises(edgelite.InterfaceError, match="unknown URL parameter"):
        edgelite.connect("http://127.0.0.1:1?authtoken=x")
    with pytest.raises(edgelite.ProgrammingError, match="consistency"):
        edgelite.connect("http://127.0.0.1:1", consistency="linearizable")
    with pytest.raises(edgelite.NotSupportedError, match="detect_types"):
        edgelite.connect(":memory:", detect_types=edgelite.client.PARSE_DECLTYPES)


def test_connection_state_persists_on_websocket_and_local(conn: edgelite.Connection,
                                                          mode: str) -> None:
    """WebSocket and local connections keep one stream, so PRAGMAs last like with sqlite3;
    over HTTP a stream (and its PRAGMAs) lasts one call or one transaction (see docs)."""
    if mode == "http":
        pytest.skip("HTTP connections keep no stream outside a transaction")
    for value in (1, 0, 1):
        conn.execute(f"PRAGMA foreign_keys = {value}")
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (value,)


def test_failed_commit_keeps_the_transaction_on_a_kept_stream(
        conn: edgelite.Connection, mode: str, table: str) -> None:
    """A COMMIT that fails (deferred foreign key) leaves the transaction open, as in
    sqlite3, where the stream is kept; over HTTP the stream closes with the COMMIT and
    the error says the transaction was rolled back."""
    if mode == "http":
        pytest.skip("PRAGMA foreign_keys does not outlive one HTTP call outside a transaction")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"CREATE TABLE {table}_p (id INTEGER PRIMARY KEY)")
    conn.execute(f"CREATE TABLE {table}_c (pid REFERENCES {table}_p(id) "
                 "DEFERRABLE INITIALLY DEFERRED)")
    conn.execute(f"INSERT INTO {table}_c VALUES (1)")
    with pytest.raises(edgelite.IntegrityError, match="still open"):
        conn.commit()
    assert conn.in_transaction
    conn.execute(f"INSERT INTO {table}_p VALUES (1)")
    conn.commit()
    assert not conn.in_transaction
    assert conn.execute(f"SELECT count(*) FROM {table}_c").fetchone() == (1,)


def test_connection_exposes_the_exception_classes(conn: edgelite.Connection) -> None:
    assert conn.IntegrityError is edgelite.IntegrityError
    assert conn.Error is edgelite.Error and conn.Warning is edgelite.Warning
