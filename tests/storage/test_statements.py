"""Statement handling: classification, argument binding, results and describe."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import apsw
import pytest

from edgelite.errors import SqlError
from edgelite.storage import effects
from edgelite.storage.describe import Description
from edgelite.storage.executor import Column, Value, bind_arguments
from edgelite.storage.statements import Kind, StatementCache, probe_statement

from .conftest import Node


@pytest.fixture
def connection() -> Iterator[apsw.Connection]:
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b)")
    conn.execute("CREATE INDEX existing_index ON t(a); CREATE TRIGGER existing_trigger "
                 "AFTER INSERT ON t BEGIN SELECT 1; END; "
                 "CREATE VIRTUAL TABLE existing_fts USING fts5(x)")
    effects.ensure_state_table(conn)
    yield conn
    conn.close()


# (sql, kind, expected attributes)
CLASSIFICATION: list[tuple[str, Kind, dict[str, object]]] = [
    ("SELECT 1", Kind.READ, {}),
    ("VALUES (1), (2)", Kind.READ, {}),
    ("WITH x AS (SELECT 1) SELECT * FROM x", Kind.READ, {}),
    ("EXPLAIN SELECT * FROM t", Kind.READ, {}),
    ("EXPLAIN QUERY PLAN SELECT * FROM t", Kind.READ, {}),
    ("-- leading comment\nSELECT a FROM t", Kind.READ, {}),
    ("SELECT * FROM pragma_table_info('t')", Kind.READ, {}),
    ("INSERT INTO t(a) VALUES ('x')", Kind.WRITE, {"is_insert": True, "is_dml": True}),
    ("REPLACE INTO t VALUES (1, 'x', 2)", Kind.WRITE, {"is_insert": True}),
    ("INSERT INTO t(id, a) VALUES (1, 'x') ON CONFLICT(id) DO UPDATE SET a = excluded.a",
     Kind.WRITE, {"is_insert": True}),
    ("INSERT INTO t(a) VALUES ('x') RETURNING id", Kind.WRITE, {"is_insert": True}),
    ("WITH x(v) AS (SELECT 1) INSERT INTO t(b) SELECT v FROM x", Kind.WRITE,
     {"is_insert": True}),
    ("UPDATE t SET a = 'y'", Kind.WRITE, {"is_insert": False, "is_dml": True}),
    ("DELETE FROM t WHERE id = 1", Kind.WRITE, {"is_insert": False, "is_dml": True}),
    ("PRAGMA defer_foreign_keys=ON", Kind.WRITE, {"is_dml": False}),
    ("CREATE TABLE u (x)", Kind.DDL, {"is_ctas": False}),
    ("CREATE TABLE u AS SELECT * FROM t", Kind.DDL, {"is_ctas": True}),
    ("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS z", Kind.DDL, {}),
    ("DROP TABLE t", Kind.DDL, {}),
    ("ALTER TABLE t ADD COLUMN c", Kind.DDL, {}),
    ("ALTER TABLE t RENAME COLUMN a TO aa", Kind.DDL, {}),
    ("CREATE INDEX t_a ON t(a)", Kind.DDL, {}),
    ("CREATE VIEW v AS SELECT a FROM t", Kind.DDL, {}),
    ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t WHERE 0; END", Kind.DDL, {}),
    ("CREATE VIRTUAL TABLE f USING fts5(x, tokenize='porter')", Kind.DDL, {}),
    ("CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)", Kind.DDL, {}),
    ("PRAGMA user_version=5", Kind.DDL, {"pragma_name": "user_version"}),
    ("PRAGMA application_id=5", Kind.DDL, {}),
    ("ANALYZE", Kind.DDL, {}),
    ("REINDEX", Kind.DDL, {}),
    ("BEGIN", Kind.BEGIN, {"readonly_begin": False}),
    ("BEGIN IMMEDIATE TRANSACTION", Kind.BEGIN, {}),
    ("BEGIN READONLY", Kind.BEGIN, {"readonly_begin": True}),
    ("begin transaction readonly;", Kind.BEGIN, {"readonly_begin": True}),
    ("COMMIT", Kind.COMMIT, {}),
    ("END TRANSACTION", Kind.COMMIT, {}),
    ("ROLLBACK", Kind.ROLLBACK, {}),
    ("SAVEPOINT sp1", Kind.SAVEPOINT, {"savepoint_name": "sp1"}),
    ("RELEASE sp1", Kind.RELEASE, {"savepoint_name": "sp1"}),
    ("RELEASE SAVEPOINT sp1", Kind.RELEASE, {"savepoint_name": "sp1"}),
    ("ROLLBACK TO sp1", Kind.ROLLBACK_TO, {"savepoint_name": "sp1"}),
    ("ROLLBACK TRANSACTION TO SAVEPOINT sp1", Kind.ROLLBACK_TO, {"savepoint_name": "sp1"}),
    ("PRAGMA foreign_keys", Kind.PRAGMA_FOREIGN_KEYS, {"pragma_value": None}),
    ("PRAGMA foreign_keys = on", Kind.PRAGMA_FOREIGN_KEYS, {"pragma_value": "on"}),
    ("PRAGMA table_info(t)", Kind.READ, {}),
    ("PRAGMA user_version", Kind.READ, {}),
    ("PRAGMA integrity_check", Kind.READ, {}),
    ("PRAGMA journal_mode", Kind.READ, {}),
    ("PRAGMA journal_mode=DELETE", Kind.DENIED, {}),
    ("PRAGMA query_only=0", Kind.DENIED, {}),
    ("PRAGMA optimize", Kind.DENIED, {}),
    ("ATTACH ':memory:' AS m", Kind.DENIED, {}),
    ("DETACH m", Kind.DENIED, {}),
    ("VACUUM", Kind.DENIED, {}),
    ("VACUUM INTO 'x.db'", Kind.DENIED, {}),
    ("CREATE TEMP TABLE x (a)", Kind.DENIED, {}),
    ("CREATE TABLE temp.x (a)", Kind.DENIED, {}),
    ("SELECT load_extension('x')", Kind.DENIED, {}),
    ("CREATE VIRTUAL TABLE s USING dbstat", Kind.DENIED, {}),
    ("INSERT INTO _edgelite_state VALUES (1, 2)", Kind.DENIED, {}),
    # IF [NOT] EXISTS no-ops: SQLite asks the authorizer nothing (or only about
    # sqlite_master); still schema statements.
    ("DROP TABLE IF EXISTS missing", Kind.DDL, {}),
    ("DROP INDEX IF EXISTS missing", Kind.DDL, {}),
    ("DROP VIEW IF EXISTS missing", Kind.DDL, {}),
    ("DROP TRIGGER IF EXISTS missing", Kind.DDL, {}),
    ("CREATE TABLE IF NOT EXISTS t (x)", Kind.DDL, {}),
    ("CREATE INDEX IF NOT EXISTS existing_index ON t(a)", Kind.DDL, {}),
    ("CREATE TRIGGER IF NOT EXISTS existing_trigger AFTER INSERT ON t BEGIN SELECT 1; END",
     Kind.DDL, {}),
    ("CREATE VIRTUAL TABLE IF NOT EXISTS existing_fts USING fts5(x)", Kind.DDL, {}),
    ("", Kind.EMPTY, {}),
    ("   ", Kind.EMPTY, {}),
    (";", Kind.EMPTY, {}),
    ("-- only a comment", Kind.EMPTY, {}),
    ("/* block */", Kind.EMPTY, {}),
]


@pytest.mark.parametrize(("sql", "kind", "attributes"), CLASSIFICATION,
                         ids=[c[0][:40] or "blank" for c in CLASSIFICATION])
def test_probe_statement_classifies(connection: apsw.Connection, sql: str, kind: Kind,
                                    attributes: dict[str, object]) -> None:
    info = probe_statement(connection, sql)
    assert info.kind is kind
    for name, value in attributes.items():
        assert getattr(info, name) == value, name
    if kind is Kind.DENIED:
        assert info.denied_reason
    if not info.readonly_begin:
        assert info.first_sql + info.remaining_sql == sql
    assert not info.has_more_statements
    # Probing runs nothing.
    assert connection.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    assert connection.execute("PRAGMA user_version").fetchall() == [(0,)]


def test_probe_splits_statements(connection: apsw.Connection) -> None:
    info = probe_statement(connection, "  SELECT 1;  SELECT 2")
    assert info.first_sql == "  SELECT 1;  " and info.remaining_sql == "SELECT 2"
    assert info.has_more_statements
    info = probe_statement(connection, "/*x*/ SELECT 1; -- trailing comment")
    assert not info.has_more_statements
    with pytest.raises(SqlError) as caught:
        probe_statement(connection, "SELEC 1")
    assert caught.value.code == "SQL_INPUT_ERROR" and "syntax error" in str(caught.value)
    with pytest.raises(SqlError, match="no such table"):
        probe_statement(connection, "SELECT * FROM missing")


def test_statement_cache_is_bounded_and_reuses_infos(connection: apsw.Connection) -> None:
    cache = StatementCache(capacity=2)
    first = cache.info(connection, "SELECT 1")
    assert cache.info(connection, "SELECT 1") is first
    cache.info(connection, "SELECT 2")
    cache.info(connection, "SELECT 3")
    assert cache.get("SELECT 1") is None
    assert cache.get("SELECT 3") is not None
    # Schema statements are probed each time (IF NOT EXISTS depends on the schema).
    ctas = "CREATE TABLE IF NOT EXISTS copy AS SELECT * FROM t"
    assert cache.info(connection, ctas).is_ctas
    assert cache.get(ctas) is None
    connection.execute(ctas)
    assert not cache.info(connection, ctas).is_ctas  # now a no-op


def _bind(connection: apsw.Connection, sql: str, args: Sequence[Value] = (),
          named: Mapping[str, Value] | None = None) -> tuple[Value, ...]:
    return bind_arguments(probe_statement(connection, sql), args, named or {})


def test_bind_positional_and_numbered(connection: apsw.Connection) -> None:
    assert _bind(connection, "SELECT ?, ?", (1, "two")) == (1, "two")
    assert _bind(connection, "SELECT ?2, ?1", ("a", "b")) == ("a", "b")  # by slot
    assert _bind(connection, "SELECT ?3", (1, 2, 3)) == (1, 2, 3)
    assert _bind(connection, "SELECT :a", (5,)) == (5,)  # positional fills named slots
    assert _bind(connection, "SELECT 1") == ()


@pytest.mark.parametrize("named", [
    {"a": 1, "b": 2, "c": 3},
    {":a": 1, "@b": 2, "$c": 3},
    {":a": 1, ":b": 2, ":c": 3},
    {"@a": 1, "b": 2, "$c": 3},
])
def test_bind_named_with_and_without_prefix(connection: apsw.Connection,
                                           named: dict[str, Value]) -> None:
    assert _bind(connection, "SELECT :a, @b, $c, :a", named=named) == (1, 2, 3)


def test_bind_errors(connection: apsw.Connection) -> None:
    cases = [
        ("SELECT ?", (1, 2), None, "ARGS_INVALID", "too many"),
        ("SELECT 1", (1,), None, "ARGS_INVALID", "too many"),
        ("SELECT ?, ?", (1,), None, "ARGS_INVALID", "not found"),
        ("SELECT :a", (), {"b": 1}, "ARGS_INVALID", "not found"),
        ("SELECT :a", (), None, "ARGS_INVALID", "not found"),
        ("SELECT ?, :a", (1,), {"a": 2}, "ARGS_BOTH_POSITIONAL_AND_NAMED", "both"),
    ]
    for sql, args, named, code, text in cases:
        with pytest.raises(SqlError) as caught:
            _bind(connection, sql, args, named)
        assert caught.value.code == code, sql
        assert text in str(caught.value)


def test_binding_through_the_database(node: Node) -> None:
    session = node.session()
    values: tuple[Value, ...] = (None, 0, -1, 2**63 - 1, -(2**63), 1.5, "", "ü€", b"",
                                 b"\x00\xff")
    placeholders = ", ".join("?" for _ in values)
    assert node.rows(session, f"SELECT {placeholders}", values) == [values]
    assert node.rows(session, "SELECT :x || @y", named_args={"x": "a", "@y": "b"}) == [
        ("ab",)]
    with pytest.raises(SqlError) as caught:
        node.execute(session, "SELECT ?", (1, 2))
    assert caught.value.code == "ARGS_INVALID"
    with pytest.raises(SqlError) as caught:
        node.execute(session, "SELECT ?", (1,), {"a": 1})
    assert caught.value.code == "ARGS_BOTH_POSITIONAL_AND_NAMED"


def test_single_statement_rules(node: Node) -> None:
    session = node.session()
    for sql in ("", "  ", "-- nothing"):
        with pytest.raises(SqlError) as caught:
            node.execute(session, sql)
        assert caught.value.code == "SQL_NO_STATEMENT"
    with pytest.raises(SqlError) as caught:
        node.execute(session, "SELECT 1; SELECT 2")
    assert caught.value.code == "SQL_MANY_STATEMENTS"
    assert node.rows(session, "SELECT 1;") == [(1,)]
    assert node.rows(session, "SELECT 1; -- trailing") == [(1,)]
    with pytest.raises(SqlError) as caught:
        node.execute(session, "SELECT * FROM missing")
    assert caught.value.code == "SQL_INPUT_ERROR" and "no such table" in str(caught.value)


def test_scripts(node: Node) -> None:
    session = node.session()
    node.script(session, "CREATE TABLE s (x); INSERT INTO s VALUES (1); -- c\n"
                         "INSERT INTO s VALUES (2);;  ; SELECT * FROM s;")
    assert node.rows(session, "SELECT x FROM s ORDER BY x") == [(1,), (2,)]
    with pytest.raises(SqlError, match="parameters"):
        node.script(session, "INSERT INTO s VALUES (?)")
    # A failing statement stops the script; the statements before it stay committed.
    with pytest.raises(SqlError, match="no such table"):
        node.script(session, "INSERT INTO s VALUES (3); INSERT INTO missing VALUES (1); "
                             "INSERT INTO s VALUES (4)")
    assert node.rows(session, "SELECT x FROM s ORDER BY x") == [(1,), (2,), (3,)]
    node.assert_replica_matches()


def test_results_row_counts_and_rowids(node: Node) -> None:
    session = node.session()
    created = node.execute(session, "CREATE TABLE r (id INTEGER PRIMARY KEY, v UNIQUE)")
    assert created.last_insert_rowid is None and created.affected_row_count == 0
    one = node.execute(session, "INSERT INTO r(v) VALUES ('a')")
    assert (one.last_insert_rowid, one.affected_row_count) == (1, 1)
    three = node.execute(session, "INSERT INTO r(v) VALUES ('b'), ('c'), ('d')")
    assert (three.last_insert_rowid, three.affected_row_count) == (4, 3)
    assert three.rows_written == 3
    update = node.execute(session, "UPDATE r SET v = v || '!' WHERE id > 1")
    assert (update.last_insert_rowid, update.affected_row_count) == (None, 3)
    delete = node.execute(session, "DELETE FROM r WHERE id = 4")
    assert (delete.last_insert_rowid, delete.affected_row_count) == (None, 1)
    select = node.execute(session, "SELECT * FROM r")
    assert (select.last_insert_rowid, select.affected_row_count) == (None, 0)
    assert select.rows_read == 3
    returning = node.execute(session, "INSERT INTO r(v) VALUES ('e') RETURNING id, v")
    assert returning.rows == [(4, "e")] and returning.last_insert_rowid == 4
    assert [c.name for c in returning.columns] == ["id", "v"]


def test_last_insert_rowid_is_per_session(node: Node) -> None:
    """The writer connection is shared; one client never sees another's rowid."""
    first, second = node.session(), node.session()
    node.execute(first, "CREATE TABLE r (id INTEGER PRIMARY KEY, v UNIQUE)")
    assert node.execute(first, "INSERT INTO r VALUES (1000, 'a')").last_insert_rowid == 1000
    ignored = node.execute(second, "INSERT OR IGNORE INTO r(v) VALUES ('a')")
    assert (ignored.last_insert_rowid, ignored.affected_row_count) == (0, 0)
    upsert = node.execute(second, "INSERT INTO r(v) VALUES ('a') "
                                  "ON CONFLICT(v) DO UPDATE SET v = 'a'")
    assert (upsert.last_insert_rowid, upsert.affected_row_count) == (0, 1)
    assert node.execute(second, "INSERT INTO r(v) VALUES ('b')").last_insert_rowid == 1001
    again = node.execute(first, "INSERT OR IGNORE INTO r(v) VALUES ('b')")
    assert again.last_insert_rowid == 1000  # its own previous value, as SQLite gives


def test_result_columns_have_decltypes(node: Node) -> None:
    session = node.session()
    node.execute(session, "CREATE TABLE d (i INTEGER, t TEXT, when_ DATETIME, "
                          "n NUMERIC(10, 2), untyped)")
    node.execute(session, "INSERT INTO d VALUES (1, 'x', '2024-01-01', 1.5, x'00')")
    for prefer_reader in (True, False):
        result = node.execute(session, "SELECT i, t, when_ AS w, n, untyped, i + 1 AS e "
                                       "FROM d", prefer_reader=prefer_reader)
        assert result.columns == (Column("i", "INTEGER"), Column("t", "TEXT"),
                                  Column("w", "DATETIME"), Column("n", "NUMERIC(10, 2)"),
                                  Column("untyped", None), Column("e", None))
        assert result.rows == [(1, "x", "2024-01-01", 1.5, b"\x00", 2)]
    # Columns come back even when no row does, and with want_rows=False.
    empty = node.execute(session, "SELECT t FROM d WHERE 0")
    assert empty.columns == (Column("t", "TEXT"),) and empty.rows == []


def _describe(node: Node, sql: str, *, read_only: bool = False) -> Description:
    outcome = node.run(node.session(read_only=read_only), lambda ctx: ctx.describe(sql))
    if outcome.error is not None:
        raise outcome.error
    assert isinstance(outcome.value, Description)
    return outcome.value


def test_describe(node: Node) -> None:
    session = node.session()
    node.execute(session, "CREATE TABLE d (id INTEGER PRIMARY KEY, name TEXT, at DATETIME)")
    described = _describe(node, "SELECT id, name AS n, at, 1 + 1 FROM d WHERE id = :id")
    assert described.parameter_names == (":id",)
    assert described.columns == (Column("id", "INTEGER"), Column("n", "TEXT"),
                                 Column("at", "DATETIME"), Column("1 + 1", None))
    assert described.is_readonly and not described.is_explain
    params = _describe(node, "SELECT :a, @b, $c, ?, ?6, :a")
    assert params.parameter_names == (":a", "@b", "$c", None, None, "?6")
    assert _describe(node, "SELECT :ab, $a").parameter_names == (":ab", "$a")
    for read_only in (False, True):
        insert = _describe(node, "INSERT INTO d(name) VALUES (?)", read_only=read_only)
        assert insert.parameter_names == (None,)
        assert not insert.is_readonly and insert.columns == ()
    assert _describe(node, "EXPLAIN SELECT * FROM d").is_explain
    assert _describe(node, "EXPLAIN QUERY PLAN SELECT * FROM d").is_explain
    # Describing runs nothing and applies nothing.
    _describe(node, "DELETE FROM d")
    _describe(node, "PRAGMA foreign_keys=ON")
    _describe(node, "CREATE TABLE never (x)")
    assert node.rows(session, "PRAGMA foreign_keys") == [(0,)]
    assert node.rows(session, "SELECT count(*) FROM sqlite_schema WHERE name='never'"
                     ) == [(0,)]
    with pytest.raises(SqlError) as caught:
        _describe(node, "SELEC 1")
    assert caught.value.code == "SQL_INPUT_ERROR"
