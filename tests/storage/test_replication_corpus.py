"""Effects reproduce the leader exactly (ARCHITECTURE §3, issue 2's key requirement).

The corpus of ``corpus.py`` runs through a real ``Database`` in several shapes
(statement by statement in autocommit, one BEGIN…COMMIT per transaction, as scripts,
and as concurrent grouped jobs); every committed effect is applied to an empty replica
by the recording commit step, and the replica must then equal the leader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import apsw
import pytest

from edgelite.errors import SqlError
from edgelite.storage.context import SqlContext
from edgelite.storage.session import SqlSession

from .conftest import Node, dump_hidden_rowids, query_file
from .corpus import SCHEMA, SCRIPT, TRANSACTIONS, UPSERT_NOTE, statement_text


def _run_statement(node: Node, session: SqlSession, statement: object) -> None:
    sql, args, must_fail = statement_text(statement)  # type: ignore[arg-type]
    if must_fail:
        with pytest.raises(SqlError):
            node.execute(session, sql, args)
    else:
        node.execute(session, sql, args)


def _autocommit(node: Node, session: SqlSession) -> None:
    for statement in SCHEMA:
        node.execute(session, statement)
    for transaction in TRANSACTIONS:
        for statement in transaction:
            _run_statement(node, session, statement)


def _one_program_per_transaction(node: Node, session: SqlSession) -> None:
    """BEGIN … COMMIT in one program; failing statements fail alone, the rest commits."""
    for transaction in [SCHEMA, *TRANSACTIONS]:
        failures: list[str] = []

        def program(ctx: SqlContext, transaction: list[object] = transaction,
                    failures: list[str] = failures) -> None:
            failures.clear()
            ctx.execute("BEGIN")
            assert not ctx.is_autocommit
            for statement in transaction:
                sql, args, must_fail = statement_text(statement)  # type: ignore[arg-type]
                try:
                    ctx.execute(sql, args)
                except SqlError:
                    assert must_fail, sql
                    failures.append(sql)
                else:
                    assert not must_fail, sql
            ctx.execute("COMMIT")
            assert ctx.is_autocommit

        outcome = node.run(session, program)
        assert outcome.error is None, outcome.error
        assert len(failures) == sum(statement_text(s)[2] for s in transaction)  # type: ignore[arg-type]


def _interactive(node: Node, session: SqlSession) -> None:
    """BEGIN … COMMIT spread over one submit per statement (a Hrana stream)."""
    for transaction in [SCHEMA, *TRANSACTIONS]:
        node.execute(session, "BEGIN")
        for statement in transaction:
            _run_statement(node, session, statement)
        node.execute(session, "COMMIT")
        assert session.is_autocommit


def _scripts(node: Node, session: SqlSession) -> None:
    node.script(session, ";\n".join(SCHEMA) + ";")
    for transaction in TRANSACTIONS:
        ok = []
        for statement in transaction:
            sql, args, must_fail = statement_text(statement)  # type: ignore[arg-type]
            if must_fail:
                continue
            if args:
                node.execute(session, sql, args)
            else:
                ok.append(sql)
        if ok:
            node.script(session, ";\n".join(ok) + ";")


SHAPES: dict[str, Callable[[Node, SqlSession], None]] = {
    "autocommit": _autocommit,
    "program_per_transaction": _one_program_per_transaction,
    "interactive": _interactive,
    "scripts": _scripts,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_corpus_replica_equals_leader(node: Node, shape: str) -> None:
    session = node.session()
    node.execute(session, "PRAGMA foreign_keys=ON")
    SHAPES[shape](node, session)
    node.script(session, SCRIPT)
    node.assert_replica_matches()
    _check_leader_semantics(node, session)
    _check_queries_agree(node, session)


def _check_leader_semantics(node: Node, session: SqlSession) -> None:
    """The corpus did what SQLite would have done (so the comparison is meaningful)."""
    rows = node.rows
    # AUTOINCREMENT never reuses the max id, even after it was deleted; a deleted
    # sqlite_sequence row restarts from max(id)+1.
    assert rows(session, "SELECT id, path FROM hits ORDER BY id") == [
        (1, "/"), (2, "/about"), (4, "/after-delete-of-max"), (5, "/after-sequence-reset")]
    sequence = dict(rows(session, "SELECT name, seq FROM sqlite_sequence"))
    assert sequence["hits"] == 5
    assert sequence["audit"] >= 102
    assert rows(session, "SELECT content, version FROM notes ORDER BY id") == [
        ("newer (scripted)", 3), ("replaced", 9)]
    # The cascade removed parent 1's children and the trigger logged it.
    assert rows(session, "SELECT parent_id FROM child ORDER BY id") == [(2,), (3,)]
    assert rows(session, "SELECT count(*) FROM audit WHERE what LIKE 'child gone %'") == [(2,)]
    # DROP TABLE of a parent with foreign keys on: children cascade, its triggers do not.
    assert rows(session, "SELECT id FROM doomed_child") == [(12,)]
    assert rows(session, "SELECT count(*) FROM audit WHERE what LIKE 'cascade %'") == [(2,)]
    assert rows(session, "SELECT count(*) FROM audit WHERE what = 'must not fire on DROP'"
                ) == [(0,)]
    assert rows(session, "SELECT a, b FROM plain WHERE a = 'sp' ORDER BY b") == [
        ("sp", 1), ("sp", 3)]
    assert rows(session, "SELECT count(*) FROM hits WHERE path = '/rolled-back'") == [(0,)]
    assert rows(session, "SELECT name, colour FROM labels ORDER BY id") == [
        ("a", "red"), ("b", "blue"), ("c", "red"), ("d", "red")]
    assert rows(session, "SELECT count(*) FROM post_summary") == [(4,)]
    assert rows(session, "SELECT count(*) FROM empty_copy") == [(0,)]
    assert rows(session, "PRAGMA user_version") == [(8,)]
    assert rows(session, "SELECT count(*) FROM from_script") == [(2,)]
    # Every post insert fired its trigger.
    assert rows(session, "SELECT count(*) FROM audit WHERE what LIKE 'post %'") == [(3,)]


QUERIES = [
    "SELECT rowid, title FROM articles WHERE articles MATCH 'edge' ORDER BY rowid",
    "SELECT rowid FROM articles WHERE articles MATCH 'collect' ORDER BY rowid",
    "SELECT rowid, highlight(articles, 1, '[', ']') FROM articles "
    "WHERE articles MATCH 'edg*' ORDER BY rank, rowid",
    "SELECT id FROM boxes WHERE minx <= 7 AND maxx >= 7 ORDER BY id",
    "SELECT id FROM boxes WHERE miny >= 5 ORDER BY id",
    "SELECT k, v ->> '$.n', json_array_length(v, '$.y') FROM kv ORDER BY k",
    "SELECT name FROM label_names ORDER BY name",
    "SELECT id, created_at, hex(token), luck FROM posts ORDER BY id",
]


def _check_queries_agree(node: Node, session: SqlSession) -> None:
    """Queries through edgelite on the leader and directly on the replica agree."""
    assert node.rows(session, "SELECT rowid FROM articles WHERE articles MATCH 'edge'")
    assert node.rows(session, "SELECT rowid FROM articles WHERE articles MATCH 'collect'")
    for sql in QUERIES:
        leader = node.rows(session, sql)
        assert leader == query_file(node.replica_path, sql), sql


def test_grouped_concurrent_jobs_replicate(node: Node) -> None:
    """Concurrent autocommit jobs (several statements each, some failing) that run in
    shared group transactions reproduce on the replica."""
    setup = node.session()
    node.execute(setup, "PRAGMA foreign_keys=ON")
    for statement in SCHEMA:
        node.execute(setup, statement)
    node.execute(setup, "INSERT INTO parent VALUES (1, 'p1'), (2, 'p2')")
    owner = node.session()
    node.execute(owner, "BEGIN")  # hold the writer so that jobs queue up and group
    node.execute(owner, "INSERT INTO plain VALUES ('owner', 0)")
    waiters = []
    lock = threading.Lock()

    def worker(worker_id: int) -> None:
        session = node.session()
        if worker_id % 2:
            node.execute(session, "PRAGMA foreign_keys=ON")
        for job in range(6):
            program = _job_program(worker_id, job)
            waiter = node.submit(session, program, prefer_reader=bool(job % 2))
            with lock:
                waiters.append(waiter)
            waiter.wait()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    # Let some jobs queue behind the owner, then release the writer.
    _wait_until(lambda: len(waiters) >= 8)
    node.execute(owner, "COMMIT")
    for thread in threads:
        thread.join(timeout=30)
    outcomes = [w.wait() for w in waiters]
    assert len(outcomes) == 48
    failed = [o for o in outcomes if o.error is not None]
    assert all(isinstance(o.error, SqlError) for o in failed)
    # Jobs 4 of every worker insert a duplicate key on purpose.
    assert len(failed) == 8
    node.assert_replica_matches()
    assert node.step.commit_count < 48 + len(SCHEMA)
    assert node.rows(setup, "SELECT count(*) FROM kv WHERE k LIKE 'w%'") == [(8 * 5,)]


def _job_program(worker_id: int, job: int) -> Callable[[SqlContext], object]:
    key = f"w{worker_id}-{job}"

    def program(ctx: SqlContext) -> object:
        if job == 4:
            ctx.execute("INSERT INTO kv VALUES (?, 1)", (f"w{worker_id}-0",))
        ctx.execute("INSERT INTO kv VALUES (?, json_object('r', random()))", (key,))
        ctx.execute("INSERT INTO posts(title) VALUES (?)", (key,))
        ctx.execute("INSERT INTO hits(path) VALUES (?)", ("/" + key,))
        ctx.execute("INSERT INTO plain VALUES (?, randomblob(3))", (key,))
        ctx.execute("INSERT INTO articles(title, body) VALUES (?, 'grouped edge writes')",
                    (key,))
        ctx.execute(UPSERT_NOTE, (worker_id, key, job))
        ctx.execute("INSERT INTO boxes VALUES (NULL, ?, ?, 0, 1)", (job, job + 1))
        return ctx.execute("INSERT INTO child(parent_id, note) VALUES (?, ?)",
                           (1 + job % 2, key)).last_insert_rowid

    return program


def _wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout_s * 100)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition not reached")


def test_replica_applies_with_triggers_and_foreign_keys_off(node: Node) -> None:
    """Trigger and cascade effects are in the changeset: firing again would double them."""
    session = node.session()
    node.execute(session, "PRAGMA foreign_keys=ON")
    for statement in SCHEMA:
        node.execute(session, statement)
    node.execute(session, "INSERT INTO posts(title) VALUES ('one')")
    node.execute(session, "INSERT INTO parent VALUES (5, 'p')")
    node.execute(session, "INSERT INTO child(parent_id) VALUES (5), (5)")
    node.execute(session, "DELETE FROM parent")
    node.assert_replica_matches()
    assert query_file(node.replica_path, "SELECT count(*) FROM audit") == [(3,)]


def test_hidden_rowids_of_text_primary_key_tables(node: Node) -> None:
    """Tables with a non-INTEGER PRIMARY KEY keep a hidden rowid that sessions do not
    carry. Content replicates (checked by ``assert_replica_matches``); see the xfail
    below for the rowid itself."""
    session = node.session()
    node.execute(session, "CREATE TABLE tp (k TEXT PRIMARY KEY, v)")
    node.execute(session, "INSERT INTO tp VALUES ('zz', 1), ('aa', 2), ('mm', 3)")
    node.execute(session, "UPDATE tp SET v = v + 1")
    node.assert_replica_matches()


@pytest.mark.xfail(reason="design limit: sessions key rowid tables by their declared "
                          "PRIMARY KEY, so the hidden rowid of a TEXT PRIMARY KEY table is "
                          "re-assigned on replicas (see docs/design/storage.md)",
                   strict=True)
def test_hidden_rowid_survives_a_key_change(node: Node) -> None:
    session = node.session()
    node.execute(session, "CREATE TABLE tp (k TEXT PRIMARY KEY, v)")
    node.execute(session, "BEGIN")
    for key in ("zz", "aa", "mm", "bb", "qq", "cc"):
        node.execute(session, "INSERT INTO tp VALUES (?, 1)", (key,))
    node.execute(session, "COMMIT")
    node.execute(session, "UPDATE tp SET k = 'renamed' WHERE k = 'aa'")
    node.assert_replica_matches()
    assert dump_hidden_rowids(node.replica_path) == dump_hidden_rowids(node.path)


def test_effects_round_trip_and_are_ordered(node: Node) -> None:
    """The recording step saw one effect per write transaction, in index order, each
    with DDL segments at their position."""
    session = node.session()
    node.execute(session, "CREATE TABLE a (x)")
    node.execute(session, "BEGIN")
    node.execute(session, "INSERT INTO a VALUES (1)")
    node.execute(session, "ALTER TABLE a ADD COLUMN y DEFAULT 2")
    node.execute(session, "INSERT INTO a VALUES (3, 4)")
    node.execute(session, "COMMIT")
    node.execute(session, "SELECT * FROM a")
    indexes = [index for index, _ in node.step.commits]
    assert indexes == [1, 2]
    _, effect = node.step.commits[1]
    kinds = [segment.kind.name for segment in effect.segments]
    assert kinds == ["CHANGESET", "DDL", "CHANGESET"]
    assert effect.segments[1].sql == "ALTER TABLE a ADD COLUMN y DEFAULT 2"
    new_rows = [[change.new for change in apsw.Changeset.iter(segment.payload)]
                for segment in effect.segments if segment.kind.name == "CHANGESET"]
    assert new_rows == [[(1, 1)], [(2, 3, 4)]]
    node.assert_replica_matches()


@pytest.mark.parametrize("setup, statements", [
    # No sequence row before; the transaction creates one and the client deletes it.
    (["DELETE FROM sqlite_sequence WHERE name = 's'"],
     ["INSERT INTO s(v) VALUES (1)", "DELETE FROM sqlite_sequence WHERE name = 's'"]),
    # The client moves the counter back to where it was before the transaction.
    ([], ["INSERT INTO s(v) VALUES (1)", "INSERT INTO s(v) VALUES (2)",
          "UPDATE sqlite_sequence SET seq = 1 WHERE name = 's'"]),
    # Delete the row, let an insert re-create it (at another rowid), delete it again.
    ([], ["DELETE FROM sqlite_sequence WHERE name = 's'", "INSERT INTO s(v) VALUES (3)",
          "DELETE FROM sqlite_sequence WHERE name = 's'"]),
    # Insert the max row and delete it again: the counter still moved.
    ([], ["INSERT INTO s(id, v) VALUES (50, 'x')", "DELETE FROM s WHERE id = 50"]),
    ([], ["INSERT INTO sqlite_sequence(name, seq) VALUES ('later', 7)",
          "CREATE TABLE later (id INTEGER PRIMARY KEY AUTOINCREMENT, v)",
          "INSERT INTO later(v) VALUES ('x')"]),
], ids=["created-and-deleted", "moved-back", "deleted-recreated-deleted", "max-row-deleted",
        "row-before-table"])
def test_clients_writing_sqlite_sequence_replicate(node: Node, setup: list[str],
                                                   statements: list[str]) -> None:
    """Client DML on sqlite_sequence inside a transaction that also moves the counters."""
    session = node.session()
    node.execute(session, "CREATE TABLE s (id INTEGER PRIMARY KEY AUTOINCREMENT, v)")
    node.execute(session, "CREATE TABLE z (id INTEGER PRIMARY KEY AUTOINCREMENT, v)")
    node.execute(session, "INSERT INTO s(v) VALUES (0)")
    node.execute(session, "INSERT INTO z(v) VALUES (0)")  # s's row is not the last one
    for sql in setup:
        node.execute(session, sql)
    node.execute(session, "BEGIN")
    for sql in statements:
        node.execute(session, sql)
    node.execute(session, "COMMIT")
    node.assert_replica_matches()
    node.execute(session, "INSERT INTO s(v) VALUES ('next')")
    node.assert_replica_matches()


def test_if_exists_schema_statements_replicate(node: Node) -> None:
    """Migrations run `… IF [NOT] EXISTS` statements again and again; whether they do
    anything depends on the schema of the moment, not on a cached classification."""
    session = node.session()
    migration = [
        "DROP TABLE IF EXISTS gone",
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE INDEX IF NOT EXISTS items_name ON items(name)",
        "CREATE VIEW IF NOT EXISTS item_names AS SELECT name FROM items",
        "CREATE TRIGGER IF NOT EXISTS items_ai AFTER INSERT ON items BEGIN "
        "INSERT INTO search(rowid, name) VALUES (new.id, new.name); END",
        "CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(name)",
        "CREATE TABLE IF NOT EXISTS snapshot AS SELECT id, name, random() AS r FROM items",
        "DROP INDEX IF EXISTS no_such_index",
        "DROP VIEW IF EXISTS no_such_view",
        "DROP TRIGGER IF EXISTS no_such_trigger",
    ]

    def migrate() -> None:
        for sql in migration:  # one request per statement, as a client sends them
            node.execute(session, sql)
        node.script(session, ";".join(migration[:2] + migration[6:]))  # and as a script

    # Exists on the first round, so the first classification sees a no-op.
    node.script(session, "CREATE TABLE snapshot (id, name, r); "
                         "INSERT INTO snapshot VALUES (0, 'seed', 0)")
    for round_number in range(3):
        migrate()
        node.execute(session, "INSERT INTO items(name) VALUES (?)", (f"edge {round_number}",))
        node.assert_replica_matches()
        # Drop what the migration creates if missing, so the next round creates it
        # again with the very same statement texts.
        node.script(session, "DROP TABLE search; DROP TABLE snapshot; DROP TRIGGER items_ai")
        node.assert_replica_matches()
    assert node.rows(session, "SELECT count(*) FROM items") == [(3,)]
    migrate()
    assert node.rows(session, "SELECT count(*) FROM snapshot") == [(3,)]
    node.assert_replica_matches()


@pytest.mark.xfail(reason="design limit: the session extension ignores rows whose PRIMARY "
                          "KEY has a NULL (SQLite allows NULL keys in rowid tables), so such "
                          "rows never reach replicas (see docs/design/storage.md)",
                   strict=True)
@pytest.mark.parametrize("schema", ["CREATE TABLE x (k TEXT PRIMARY KEY, v)",
                                    "CREATE TABLE x (a, b, v, PRIMARY KEY (a, b))"])
def test_rows_with_null_primary_key_values_replicate(node: Node, schema: str) -> None:
    session = node.session()
    node.execute(session, schema)
    node.execute(session, "INSERT INTO x(v) VALUES ('null key')")
    node.assert_replica_matches()
