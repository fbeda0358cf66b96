"""The security checklist of reliability.md §4, for read-only and read-write sessions.

Every statement runs through the real ``Database`` (its routing, its authorizer, its
connections). Afterwards nothing may have changed that a caller must not change: no
file created, WAL and synchronous settings intact, the reserved state table intact,
reader connections still ``query_only``, and the replica still equal to the leader.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from edgelite.errors import PermissionDeniedError, SqlError
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.statements import Kind, probe_statement

from .conftest import Node, query_file

SETUP = """
CREATE TABLE t (id INTEGER PRIMARY KEY, v);
CREATE TABLE k (id INTEGER PRIMARY KEY, v UNIQUE);
CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v);
INSERT INTO a(v) VALUES (1);
CREATE VIRTUAL TABLE docs USING fts5(body);
INSERT INTO t(v) VALUES ('one'), ('two');
INSERT INTO k(v) VALUES ('a');
INSERT INTO docs(body) VALUES ('edge');
"""

# Statements nobody may run through the SQL API. {dir} is the database directory.
DENIED_FOR_EVERYONE = [
    "ATTACH '{dir}/attached.db' AS other",
    "ATTACH DATABASE ':memory:' AS mem",
    "DETACH DATABASE main",
    "VACUUM",
    "VACUUM INTO '{dir}/copy.db'",
    "  /* hidden */ vacuum main INTO '{dir}/copy2.db'",
    "PRAGMA query_only=0",
    "PRAGMA query_only=OFF",
    "PRAGMA writable_schema=1",
    "PRAGMA writable_schema=ON",
    "UPDATE sqlite_master SET sql = 'CREATE TABLE t (x)' WHERE name = 't'",
    "UPDATE sqlite_schema SET name = 'u' WHERE name = 't'",
    "PRAGMA journal_mode=DELETE",
    "PRAGMA main.journal_mode=OFF",
    "PRAGMA synchronous=OFF",
    "PRAGMA locking_mode=EXCLUSIVE",
    "PRAGMA mmap_size=1000000",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "PRAGMA cache_size=1",
    "PRAGMA trusted_schema=ON",
    "PRAGMA recursive_triggers=ON",
    "PRAGMA hard_heap_limit=1",
    "PRAGMA temp_store_directory='{dir}'",
    "SELECT load_extension('{dir}/evil')",
    "SELECT readfile('{dir}/test.db')",
    "SELECT writefile('{dir}/written.txt', 'x')",
    "SELECT edit('text')",
    "SELECT fts3_tokenizer('simple')",
    "CREATE TEMP TABLE tmp (x)",
    "CREATE TEMPORARY TABLE tmp2 AS SELECT 1",
    "CREATE TABLE temp.tmp3 (x)",
    "CREATE TEMP VIEW tv AS SELECT 1",
    "CREATE TEMP TRIGGER tt AFTER INSERT ON t BEGIN SELECT 1; END",
    "CREATE VIEW temp.tv2 AS SELECT 1",
    "CREATE TRIGGER temp.tt2 AFTER INSERT ON t BEGIN SELECT 1; END",
    "CREATE VIRTUAL TABLE temp.tf USING fts5(x)",
    "INSERT INTO _edgelite_state VALUES ('applied_index', 999)",
    "UPDATE _edgelite_state SET value = 0",
    "DELETE FROM _edgelite_state",
    "REPLACE INTO _edgelite_state VALUES ('x', 1)",
    "DROP TABLE _edgelite_state",
    "ALTER TABLE _edgelite_state RENAME TO stolen",
    "ALTER TABLE _edgelite_state ADD COLUMN x",
    "CREATE INDEX idx_state ON _edgelite_state(value)",
    "CREATE TRIGGER on_state AFTER UPDATE ON _edgelite_state BEGIN "
    "INSERT INTO t(v) VALUES ('unrecorded'); END",
    "CREATE TABLE _edgelite_mine (x)",
    "CREATE VIRTUAL TABLE stats USING dbstat",
    "INSERT INTO docs_data VALUES (1000, x'00')",  # FTS5 shadow table (defensive mode)
]

# Every way of writing: refused for read-only callers, fine for read-write ones.
WRITES = [
    "INSERT INTO t(v) VALUES ('new')",
    "INSERT INTO t(v) VALUES ('returned') RETURNING id, v",
    "UPDATE t SET v = 'changed' WHERE id = 1",
    "DELETE FROM t WHERE id = 2",
    "REPLACE INTO t VALUES (1, 'replaced')",
    "INSERT OR REPLACE INTO t VALUES (5, 'five')",
    "INSERT INTO k(v) VALUES ('a') ON CONFLICT(v) DO UPDATE SET v = 'upserted'",
    "INSERT INTO k(v) VALUES ('a') ON CONFLICT DO NOTHING",
    "WITH src(x) AS (SELECT 'cte') INSERT INTO t(v) SELECT x FROM src",
    "WITH doomed AS (SELECT id FROM t) DELETE FROM t WHERE id IN doomed",
    "CREATE TABLE made (x)",
    "CREATE TABLE made_as AS SELECT * FROM t",
    "CREATE INDEX t_v ON t(v)",
    "CREATE VIEW tv AS SELECT v FROM t",
    "CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN UPDATE k SET v = v || '+'; END",
    "ALTER TABLE t ADD COLUMN extra",
    "ALTER TABLE t RENAME TO renamed",
    "DROP TABLE k",
    "CREATE VIRTUAL TABLE more USING fts5(x)",
    "INSERT INTO docs(docs) VALUES ('optimize')",
    "PRAGMA user_version=3",
    "ANALYZE",
    "REINDEX",
    "DELETE FROM sqlite_sequence",
]

READS = [
    "SELECT * FROM t",
    "SELECT * FROM _edgelite_state",
    "SELECT rowid FROM docs WHERE docs MATCH 'edge'",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) "
    "SELECT sum(x) FROM c",
    "SELECT * FROM pragma_table_info('t')",
    "PRAGMA table_info(t)",
    "PRAGMA index_list(k)",
    "PRAGMA integrity_check",
    "PRAGMA user_version",
    "PRAGMA journal_mode",
    "PRAGMA foreign_keys",
    "EXPLAIN SELECT * FROM t",
    "EXPLAIN QUERY PLAN SELECT * FROM t WHERE id = 1",
    "SELECT json_extract('{{\"a\": 1}}', '$.a'), sqrt(16), random() IS NOT NULL",
]


@pytest.fixture
def snode(node: Node) -> Node:
    node.script(node.session(), SETUP)
    return node


def _fmt(node: Node, sql: str) -> str:
    return sql.format(dir=node.directory)


def _files(node: Node) -> set[str]:
    return {path.name for path in Path(node.directory).iterdir()}


def _assert_nothing_changed(node: Node, files_before: set[str]) -> None:
    assert _files(node) == files_before
    assert query_file(node.path, "PRAGMA journal_mode") == [("wal",)]
    assert query_file(node.path, "SELECT key FROM _edgelite_state") == [("applied_index",)]
    for reader in node.db.readers.readers:
        assert reader.connection.execute("PRAGMA query_only").fetchall() == [(1,)]
    writer = node.db.writer.connection  # idle now: every job has finished
    with internal_statements(writer):
        assert writer.execute("PRAGMA synchronous").fetchall() == [(2,)]  # FULL
        assert writer.execute("PRAGMA trusted_schema").fetchall() == [(0,)]
        assert writer.execute("PRAGMA query_only").fetchall() == [(0,)]
    assert writer.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, -1) == 1
    node.assert_replica_matches()


@pytest.mark.parametrize("read_only", [True, False], ids=["read_only", "read_write"])
@pytest.mark.parametrize("prefer_reader", [True, False], ids=["reader", "writer"])
def test_denied_statements_are_refused_and_change_nothing(
        snode: Node, read_only: bool, prefer_reader: bool) -> None:
    node = snode
    files_before = _files(node)
    schema_before = query_file(node.path, "SELECT sql FROM sqlite_schema ORDER BY name")
    for template in DENIED_FOR_EVERYONE:
        sql = _fmt(node, template)
        session = node.session(read_only=read_only)
        with pytest.raises((SqlError, PermissionDeniedError)) as caught:
            node.execute(session, sql, prefer_reader=prefer_reader)
        if isinstance(caught.value, SqlError):
            assert caught.value.code in ("SQLITE_AUTH", "SQL_INPUT_ERROR"), (sql, caught.value)
        # The same statement inside a transaction is refused too.
        node.execute(session, "BEGIN", prefer_reader=prefer_reader)
        with pytest.raises((SqlError, PermissionDeniedError)):
            node.execute(session, sql)
        node.execute(session, "ROLLBACK")
    assert query_file(node.path, "SELECT sql FROM sqlite_schema ORDER BY name") == schema_before
    assert query_file(node.path, "SELECT v FROM t ORDER BY id") == [("one",), ("two",)]
    _assert_nothing_changed(node, files_before)


@pytest.mark.parametrize("sql", WRITES)
def test_read_only_sessions_cannot_write(snode: Node, sql: str) -> None:
    node = snode
    files_before = _files(node)
    session = node.session(read_only=True)
    for prefer_reader in (True, False):
        with pytest.raises(PermissionDeniedError) as caught:
            node.execute(session, sql, prefer_reader=prefer_reader)
        assert caught.value.code == "AUTH_PERMISSION_DENIED"
    # Inside a read transaction, and through a script, too.
    node.execute(session, "BEGIN")
    with pytest.raises(PermissionDeniedError):
        node.execute(session, sql)
    node.execute(session, "COMMIT")
    with pytest.raises(PermissionDeniedError):
        node.script(session, "SELECT 1; " + sql)
    assert node.step.commit_count == 1  # only the setup committed
    _assert_nothing_changed(node, files_before)


@pytest.mark.parametrize("sql", WRITES)
def test_read_write_sessions_can_write(snode: Node, sql: str) -> None:
    node = snode
    result = node.execute(node.session(), sql)
    if "RETURNING" in sql:
        assert [c.name for c in result.columns] == ["id", "v"]
        assert result.rows == [(3, "returned")]
    node.assert_replica_matches()


@pytest.mark.parametrize("read_only", [True, False], ids=["read_only", "read_write"])
def test_reads_are_allowed(snode: Node, read_only: bool) -> None:
    node = snode
    session = node.session(read_only=read_only)
    for template in READS:
        node.execute(session, _fmt(node, template))
    assert node.rows(session, "SELECT rowid FROM docs WHERE docs MATCH 'edge'") == [(1,)]


def test_statement_readonly_flag_is_not_trusted(snode: Node) -> None:
    """SQLite calls `PRAGMA query_only=0` and ATTACH read-only statements; edgelite
    does not let them through because of that."""
    node = snode
    session = node.session(read_only=True)
    for sql in ("PRAGMA query_only=0", f"ATTACH '{node.directory}/x.db' AS x"):
        description = node.run(session, lambda ctx, sql=sql: ctx.describe(sql)).value
        assert description.is_readonly
        with pytest.raises(SqlError) as caught:
            node.execute(session, sql)
        assert caught.value.code == "SQLITE_AUTH"
    with pytest.raises(PermissionDeniedError):
        node.execute(session, "INSERT INTO t(v) VALUES ('still refused')")
    assert not (node.directory / "x.db").exists()


def test_probing_never_applies_a_pragma(snode: Node) -> None:
    """SQLite applies flag pragmas while preparing them; classification must not."""
    node = snode
    reader = node.db.readers.readers[0].connection
    for sql in ("PRAGMA query_only=0", "PRAGMA foreign_keys=ON", "PRAGMA recursive_triggers=1"):
        info = probe_statement(reader, sql)
        assert info.kind in (Kind.DENIED, Kind.PRAGMA_FOREIGN_KEYS)
    assert reader.execute("PRAGMA query_only").fetchall() == [(1,)]
    assert reader.execute("PRAGMA foreign_keys").fetchall() == [(0,)]
    assert reader.execute("PRAGMA recursive_triggers").fetchall() == [(0,)]


def test_denied_functions_cannot_hide_in_views_or_triggers(snode: Node) -> None:
    """A view or trigger may be created, but what it calls is checked when it runs
    (the authorizer sees the function; trusted_schema=OFF refuses unsafe ones)."""
    node = snode
    session = node.session()
    node.execute(session, "CREATE VIEW sneaky AS SELECT fts3_tokenizer('simple') AS x")
    with pytest.raises(SqlError):
        node.execute(session, "SELECT * FROM sneaky")
    node.execute(session, "CREATE TABLE trap (x)")
    node.execute(session, "CREATE TRIGGER trap_ai AFTER INSERT ON trap BEGIN "
                          "DELETE FROM _edgelite_state; END")
    with pytest.raises(SqlError, match="reserved"):
        node.execute(session, "INSERT INTO trap VALUES (1)")
    assert query_file(node.path, "SELECT count(*) FROM trap") == [(0,)]
    node.assert_replica_matches()


def test_read_only_session_cannot_reach_the_writer(snode: Node) -> None:
    """A read-only session is served by readers even when it asks for the writer, and
    a read-only BEGIN there is a read transaction."""
    node = snode
    session = node.session(read_only=True)
    node.execute(session, "BEGIN", prefer_reader=False)
    assert session.reader is not None
    assert node.db.writer.owner is None
    node.execute(session, "COMMIT")
    node.execute(session, "SAVEPOINT sp", prefer_reader=False)  # a read transaction too
    assert session.reader is not None and node.db.writer.owner is None
    with pytest.raises(PermissionDeniedError):
        node.execute(session, "INSERT INTO t(v) VALUES (1)", prefer_reader=False)
    node.execute(session, "RELEASE sp")
    assert session.reader is None
