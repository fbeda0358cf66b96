"""Interactive transactions, savepoints, read transactions and the lock timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from edgelite.errors import SqlError
from edgelite.storage.context import SqlContext
from edgelite.storage.database import DatabaseConfig
from edgelite.storage.session import SqlSession, TxnState

from .conftest import Node, query_file


@pytest.fixture
def tnode(node: Node) -> Node:
    node.execute(node.session(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v UNIQUE)")
    return node


def _values(node: Node) -> list[object]:
    return [v for (v,) in query_file(node.path, "SELECT v FROM t ORDER BY id")]


def _autocommit_flag(node: Node, session: SqlSession) -> bool:
    outcome = node.run(session, lambda ctx: ctx.is_autocommit)
    return bool(outcome.value)


@pytest.mark.parametrize("prefer_reader", [True, False])
def test_begin_commit_across_submits(tnode: Node, prefer_reader: bool) -> None:
    node = tnode
    session = node.session()
    assert _autocommit_flag(node, session)
    node.execute(session, "BEGIN", prefer_reader=prefer_reader)
    assert not _autocommit_flag(node, session)
    assert session.txn is TxnState.WRITE
    node.execute(session, "INSERT INTO t(v) VALUES ('one')", prefer_reader=prefer_reader)
    assert node.rows(session, "SELECT v FROM t") == [("one",)]  # sees its own write
    node.execute(session, "INSERT INTO t(v) VALUES ('two')")
    with pytest.raises(SqlError, match="UNIQUE"):
        node.execute(session, "INSERT INTO t(v) VALUES ('two')")  # fails alone
    assert not _autocommit_flag(node, session)
    node.execute(session, "COMMIT")
    assert _autocommit_flag(node, session)
    assert _values(node) == ["one", "two"]
    node.assert_replica_matches()


def test_rollback_discards_everything_including_ddl(tnode: Node) -> None:
    node = tnode
    session = node.session()
    commits = node.step.commit_count
    node.execute(session, "BEGIN")
    node.execute(session, "INSERT INTO t(v) VALUES ('gone')")
    node.execute(session, "CREATE TABLE extra (x)")
    node.execute(session, "INSERT INTO extra VALUES (1)")
    node.execute(session, "ROLLBACK")
    assert _autocommit_flag(node, session)
    assert _values(node) == []
    assert query_file(node.path, "SELECT count(*) FROM sqlite_schema WHERE name='extra'"
                      ) == [(0,)]
    assert node.step.commit_count == commits
    node.assert_replica_matches()


def test_other_writers_wait_for_the_transaction_then_proceed(tnode: Node) -> None:
    node = tnode
    owner, other, reader = node.session(), node.session(), node.session()
    node.execute(owner, "BEGIN")
    node.execute(owner, "INSERT INTO t(v) VALUES ('owner')")
    waiting = node.submit(other, lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('other')"))
    # Readers never see uncommitted data, and are not blocked by the writer.
    assert node.rows(reader, "SELECT count(*) FROM t") == [(0,)]
    assert not waiting.finished
    node.execute(owner, "INSERT INTO t(v) VALUES ('owner 2')")
    node.execute(owner, "COMMIT")
    assert waiting.wait().error is None
    assert _values(node) == ["owner", "owner 2", "other"]
    assert node.rows(reader, "SELECT count(*) FROM t") == [(3,)]
    node.assert_replica_matches()


def test_lock_timeout_steals_the_transaction(make_node: Callable[..., Node]) -> None:
    node = make_node(DatabaseConfig(read_connections=1, txn_timeout_s=0.2))
    victim, other = node.session(), node.session()
    node.execute(victim, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    node.execute(victim, "BEGIN")
    node.execute(victim, "INSERT INTO t(v) VALUES ('victim')")
    # Another write waits; once the victim held the lock past the timeout it is
    # rolled back under it and the other write proceeds.
    assert node.run(other, lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('other')")
                    ).error is None
    assert _values(node) == ["other"]
    for sql in ("INSERT INTO t(v) VALUES ('late')", "SELECT * FROM t"):
        with pytest.raises(SqlError) as caught:
            node.execute(victim, sql)
        assert caught.value.code == "TRANSACTION_TIMEOUT"
        assert "timed out" in str(caught.value)
    assert not _autocommit_flag(node, victim)
    node.execute(victim, "ROLLBACK")
    assert _autocommit_flag(node, victim)
    node.execute(victim, "INSERT INTO t(v) VALUES ('again')")
    assert _values(node) == ["other", "again"]
    node.assert_replica_matches()


def test_lock_is_kept_past_the_timeout_when_nobody_waits(make_node: Callable[..., Node]
                                                         ) -> None:
    node = make_node(DatabaseConfig(read_connections=1, txn_timeout_s=0.05))
    session = node.session()
    node.execute(session, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    node.execute(session, "BEGIN")
    node.execute(session, "INSERT INTO t(v) VALUES (1)")
    node.run(session, lambda ctx: None)  # time passes; nobody else wants the writer
    node.execute(session, "INSERT INTO t(v) VALUES (2)")
    node.execute(session, "COMMIT")
    assert _values(node) == [1, 2]


def test_close_session_rolls_back_and_frees_the_writer(tnode: Node) -> None:
    node = tnode
    owner, other = node.session(), node.session()
    node.execute(owner, "BEGIN")
    node.execute(owner, "INSERT INTO t(v) VALUES ('abandoned')")
    waiting = node.submit(other, lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('next')"))
    assert node.close_session(owner).error is None
    assert owner.closed
    assert waiting.wait().error is None
    assert _values(node) == ["next"]
    node.assert_replica_matches()


def test_close_session_of_a_read_transaction(tnode: Node) -> None:
    node = tnode
    session = node.session(read_only=True)
    node.execute(session, "BEGIN")
    assert session.txn is TxnState.READ
    node.execute(session, "SELECT * FROM t")
    assert node.close_session(session).error is None
    assert session.txn is TxnState.NONE and session.closed
    # The reader it was pinned to serves others and sees new data.
    node.execute(node.session(), "INSERT INTO t(v) VALUES ('x')")
    for _ in range(4):
        assert node.rows(node.session(read_only=True), "SELECT count(*) FROM t") == [(1,)]


def test_savepoints_partial_rollback(tnode: Node) -> None:
    node = tnode
    session = node.session()
    node.execute(session, "BEGIN")
    node.execute(session, "INSERT INTO t(v) VALUES ('kept')")
    node.execute(session, "SAVEPOINT a")
    node.execute(session, "INSERT INTO t(v) VALUES ('rolled back')")
    node.execute(session, "SAVEPOINT b")
    node.execute(session, "INSERT INTO t(v) VALUES ('also rolled back')")
    node.execute(session, "ROLLBACK TO a")
    assert not _autocommit_flag(node, session)
    node.execute(session, "INSERT INTO t(v) VALUES ('after')")
    node.execute(session, "RELEASE a")
    assert not _autocommit_flag(node, session)  # BEGIN started it: RELEASE does not end it
    node.execute(session, "COMMIT")
    assert _values(node) == ["kept", "after"]
    node.assert_replica_matches()


def test_savepoint_started_transaction_commits_on_release(tnode: Node) -> None:
    node = tnode
    session, other = node.session(), node.session()
    node.execute(session, "SAVEPOINT outer_sp")
    assert not _autocommit_flag(node, session)
    node.execute(session, "INSERT INTO t(v) VALUES (1)")
    node.execute(session, "SAVEPOINT inner_sp")
    node.execute(session, "INSERT INTO t(v) VALUES (2)")
    node.execute(session, "ROLLBACK TO inner_sp")
    node.execute(session, "RELEASE inner_sp")
    assert not _autocommit_flag(node, session)
    assert node.rows(other, "SELECT count(*) FROM t") == [(0,)]
    node.execute(session, "RELEASE outer_sp")
    assert _autocommit_flag(node, session)
    assert _values(node) == [1]
    node.assert_replica_matches()


def test_savepoint_names_and_errors(tnode: Node) -> None:
    node = tnode
    session = node.session()
    with pytest.raises(SqlError, match="no such savepoint"):
        node.execute(session, "RELEASE nowhere")
    with pytest.raises(SqlError, match="no transaction is active"):
        node.execute(session, "COMMIT")
    with pytest.raises(SqlError, match="no transaction is active"):
        node.execute(session, "ROLLBACK")
    node.execute(session, "BEGIN")
    with pytest.raises(SqlError, match="within a transaction"):
        node.execute(session, "BEGIN")
    with pytest.raises(SqlError, match="no such savepoint"):
        node.execute(session, "ROLLBACK TO nowhere")
    node.execute(session, "SAVEPOINT Mixed")
    node.execute(session, "INSERT INTO t(v) VALUES (1)")
    node.execute(session, "ROLLBACK TO mixed")  # names are case-insensitive
    node.execute(session, "COMMIT")
    assert _values(node) == []


def test_rollback_to_across_ddl_is_refused(tnode: Node) -> None:
    node = tnode
    session = node.session()
    node.execute(session, "BEGIN")
    node.execute(session, "INSERT INTO t(v) VALUES ('before')")
    node.execute(session, "SAVEPOINT sp")
    node.execute(session, "INSERT INTO t(v) VALUES ('inside')")
    node.execute(session, "CREATE TABLE made_inside (x)")
    with pytest.raises(SqlError, match="schema change is not supported") as caught:
        node.execute(session, "ROLLBACK TO sp")
    assert caught.value.code == "SQLITE_UNKNOWN"
    assert not _autocommit_flag(node, session)  # the transaction is still usable
    node.execute(session, "INSERT INTO made_inside VALUES (1)")
    node.execute(session, "COMMIT")
    assert _values(node) == ["before", "inside"]
    node.assert_replica_matches()


def test_rollback_to_a_savepoint_after_the_ddl_is_fine(tnode: Node) -> None:
    node = tnode
    session = node.session()
    node.execute(session, "BEGIN")
    node.execute(session, "CREATE TABLE made (x)")
    node.execute(session, "SAVEPOINT sp")
    node.execute(session, "INSERT INTO made VALUES (1)")
    node.execute(session, "ROLLBACK TO sp")
    node.execute(session, "INSERT INTO made VALUES (2)")
    node.execute(session, "COMMIT")
    assert query_file(node.path, "SELECT x FROM made") == [(2,)]
    node.assert_replica_matches()


@pytest.mark.parametrize("begin", ["BEGIN READONLY", "BEGIN TRANSACTION READONLY",
                                   "begin transaction readonly;"])
@pytest.mark.parametrize("prefer_reader", [True, False])
def test_begin_readonly(tnode: Node, begin: str, prefer_reader: bool) -> None:
    node = tnode
    session = node.session()
    node.execute(session, begin, prefer_reader=prefer_reader)
    assert not _autocommit_flag(node, session)
    assert node.rows(session, "SELECT count(*) FROM t") == [(0,)]
    for sql in ("INSERT INTO t(v) VALUES (1)", "DELETE FROM t", "CREATE TABLE x (a)"):
        with pytest.raises(SqlError) as caught:
            node.execute(session, sql)
        assert caught.value.code == "SQLITE_READONLY"
    node.execute(session, "COMMIT")
    assert _autocommit_flag(node, session)
    node.execute(session, "INSERT INTO t(v) VALUES ('after')")
    assert _values(node) == ["after"]


def test_read_transaction_sees_a_snapshot(tnode: Node) -> None:
    node = tnode
    reader, writer = node.session(read_only=True), node.session()
    node.execute(writer, "INSERT INTO t(v) VALUES (1)")
    node.execute(reader, "BEGIN")
    assert node.rows(reader, "SELECT count(*) FROM t") == [(1,)]
    node.execute(writer, "INSERT INTO t(v) VALUES (2)")
    assert node.rows(reader, "SELECT count(*) FROM t") == [(1,)]
    node.execute(reader, "COMMIT")
    assert node.rows(reader, "SELECT count(*) FROM t") == [(2,)]


def test_uncommitted_group_is_invisible_to_readers(tnode: Node) -> None:
    node = tnode
    entered, release = threading.Event(), threading.Event()

    def gate(_effect: object) -> None:
        node.step.gate = None
        entered.set()
        assert release.wait(10)

    node.step.gate = gate
    writing = node.submit(node.session(),
                          lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('pending')"))
    assert entered.wait(10)
    assert node.rows(node.session(), "SELECT count(*) FROM t") == [(0,)]
    assert node.rows(node.session(read_only=True), "SELECT count(*) FROM t") == [(0,)]
    release.set()
    assert writing.wait().error is None
    assert node.rows(node.session(), "SELECT count(*) FROM t") == [(1,)]


def test_or_rollback_inside_a_transaction_ends_it(tnode: Node) -> None:
    node = tnode
    session, other = node.session(), node.session()
    node.execute(session, "INSERT INTO t(v) VALUES ('taken')")
    node.execute(session, "BEGIN")
    node.execute(session, "INSERT INTO t(v) VALUES ('lost')")
    with pytest.raises(SqlError) as caught:
        node.execute(session, "INSERT OR ROLLBACK INTO t(v) VALUES ('taken')")
    assert caught.value.code == "SQLITE_CONSTRAINT"
    assert _autocommit_flag(node, session)  # SQLite ended the transaction
    with pytest.raises(SqlError, match="no transaction is active"):
        node.execute(session, "COMMIT")
    node.execute(other, "INSERT INTO t(v) VALUES ('free')")  # the writer is free
    assert _values(node) == ["taken", "free"]
    node.assert_replica_matches()


def test_deferred_foreign_key_violation_fails_commit_and_keeps_the_transaction(
        node: Node) -> None:
    session = node.session()
    node.script(session, """
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (id INTEGER PRIMARY KEY,
            pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
    """)
    node.execute(session, "PRAGMA foreign_keys=ON")
    node.execute(session, "BEGIN")
    node.execute(session, "INSERT INTO child(pid) VALUES (1)")  # deferred: allowed for now
    with pytest.raises(SqlError, match="FOREIGN KEY") as caught:
        node.execute(session, "COMMIT")
    assert caught.value.code == "SQLITE_CONSTRAINT"
    assert not _autocommit_flag(node, session)
    node.execute(session, "INSERT INTO parent VALUES (1)")  # repair it
    node.execute(session, "COMMIT")
    assert query_file(node.path, "SELECT pid FROM child") == [(1,)]
    node.assert_replica_matches()


def test_foreign_keys_pragma_is_per_session(tnode: Node) -> None:
    node = tnode
    node.script(node.session(), """
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent(id));
    """)
    on, off = node.session(), node.session()
    node.execute(on, "PRAGMA foreign_keys=ON")
    assert node.rows(on, "PRAGMA foreign_keys") == [(1,)]
    assert node.rows(off, "PRAGMA foreign_keys") == [(0,)]
    node.execute(off, "INSERT INTO child(pid) VALUES (5)")
    with pytest.raises(SqlError, match="FOREIGN KEY"):
        node.execute(on, "INSERT INTO child(pid) VALUES (6)")
    # Inside a transaction the pragma is a no-op, as in SQLite.
    node.execute(off, "BEGIN")
    node.execute(off, "PRAGMA foreign_keys=ON")
    node.execute(off, "INSERT INTO child(pid) VALUES (7)")
    node.execute(off, "COMMIT")
    assert node.rows(off, "PRAGMA foreign_keys") == [(0,)]
    assert query_file(node.path, "SELECT pid FROM child ORDER BY id") == [(5,), (7,)]


def test_program_with_transaction_and_autocommit_statements(tnode: Node) -> None:
    node = tnode

    def program(ctx: SqlContext) -> list[bool]:
        flags = [ctx.is_autocommit]
        ctx.execute("INSERT INTO t(v) VALUES (1)")
        ctx.execute("BEGIN")
        flags.append(ctx.is_autocommit)
        ctx.execute("INSERT INTO t(v) VALUES (2)")
        ctx.execute("ROLLBACK")
        flags.append(ctx.is_autocommit)
        ctx.execute("INSERT INTO t(v) VALUES (3)")
        return flags

    outcome = node.run(node.session(), program)
    assert outcome.error is None and outcome.value == [True, False, True]
    assert _values(node) == [1, 3]
    node.assert_replica_matches()
