"""The applied index: stored with each write, exactly once, across crashes and failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import apsw
import pytest

from edgelite.errors import DivergenceError, OutcomeUnknownError, SqlError
from edgelite.storage import effects
from edgelite.storage.database import Database, DatabaseConfig

from .conftest import Node, Waiter, big_budget, query_file, read_applied_index


def _count_commits(node: Node) -> int:
    return node.step.commit_count


def test_applied_index_counts_committed_write_transactions(node: Node) -> None:
    session = node.session()
    node.execute(session, "CREATE TABLE t (id INTEGER PRIMARY KEY, v UNIQUE)")
    node.execute(session, "INSERT INTO t(v) VALUES (1)")
    node.execute(session, "SELECT * FROM t")  # reads commit nothing
    node.execute(session, "DELETE FROM t WHERE v = 'none'")  # changes nothing
    with pytest.raises(SqlError):
        node.execute(session, "INSERT INTO t(v) VALUES (1)")
    node.execute(session, "BEGIN")
    node.execute(session, "INSERT INTO t(v) VALUES (2)")
    node.execute(session, "INSERT INTO t(v) VALUES (3)")
    node.execute(session, "COMMIT")
    node.execute(session, "BEGIN")
    node.execute(session, "SELECT 1")
    node.execute(session, "COMMIT")  # an empty transaction
    assert node.db.applied_index == 3 == _count_commits(node)
    assert read_applied_index(node.path) == 3
    assert [index for index, _ in node.step.commits] == [1, 2, 3]
    node.assert_replica_matches()  # the replica stored the same index with each apply


def test_applied_index_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    config = DatabaseConfig(read_connections=1)
    database = Database("reopen", path, config)
    try:
        _execute(database, "CREATE TABLE t (v)")
        for value in range(5):
            _execute(database, f"INSERT INTO t VALUES ({value})")
        assert database.applied_index == 6
    finally:
        database.close()
    database = Database("reopen", path, config)
    try:
        assert database.applied_index == 6
        outcome = _execute(database, "INSERT INTO t VALUES (99)")
        assert outcome.commit_index == 7 and database.applied_index == 7
    finally:
        database.close()
    assert read_applied_index(path) == 7


def _execute(database: Database, sql: str):  # type: ignore[no-untyped-def]
    waiter = Waiter()
    session = database.open_session(read_only=False)
    database.submit(session, lambda ctx: ctx.execute_script(sql), budget=big_budget(),
                    on_done=waiter.done)
    outcome = waiter.wait()
    assert outcome.error is None, outcome.error
    return outcome


@pytest.mark.parametrize("shape", ["autocommit", "interactive", "grouped"])
def test_failed_commit_step_leaves_nothing_committed(node: Node, shape: str) -> None:
    session = node.session()
    node.execute(session, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    index_before = node.db.applied_index
    entered, release = threading.Event(), threading.Event()
    seen_by_reader: list[object] = []

    def failing_gate(_effect: effects.Effect) -> None:
        node.step.gate = None
        entered.set()
        assert release.wait(10)
        raise OutcomeUnknownError("no quorum", request_id="req-7")

    if shape == "interactive":
        node.execute(session, "BEGIN")
        node.execute(session, "INSERT INTO t(v) VALUES ('in txn')")
        node.step.gate = failing_gate
        waiter = node.submit(session, lambda ctx: ctx.execute("COMMIT"))
    else:
        node.step.gate = failing_gate
        waiter = node.submit(session, lambda ctx: ctx.execute("INSERT INTO t(v) VALUES (1)"),
                             prefer_reader=shape == "autocommit")
    assert entered.wait(10)
    seen_by_reader = node.rows(node.session(), "SELECT count(*) FROM t")
    release.set()
    outcome = waiter.wait()
    assert isinstance(outcome.error, OutcomeUnknownError)
    assert outcome.error.request_id == "req-7"
    assert seen_by_reader == [(0,)]
    assert query_file(node.path, "SELECT count(*) FROM t") == [(0,)]
    assert node.db.applied_index == index_before == read_applied_index(node.path)
    assert session.is_autocommit  # the transaction is over
    assert node.db.writer.owner is None
    node.execute(session, "INSERT INTO t(v) VALUES ('next')")
    assert node.db.applied_index == index_before + 1
    node.assert_replica_matches()


def test_writer_connection_cannot_commit_around_the_commit_step(node: Node) -> None:
    """The commit hook vetoes any commit edgelite did not authorize."""
    session = node.session()
    node.execute(session, "CREATE TABLE t (v)")
    writer = node.db.writer.connection  # idle: every job has finished
    with pytest.raises(apsw.ConstraintError):
        writer.execute("INSERT INTO t VALUES ('sneaked in')")
    assert query_file(node.path, "SELECT count(*) FROM t") == [(0,)]
    node.execute(session, "INSERT INTO t VALUES ('fine')")
    assert query_file(node.path, "SELECT v FROM t") == [("fine",)]


WRITER_SCRIPT = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from edgelite.storage.database import Database, DatabaseConfig
    from edgelite.storage.executor import ResponseBudget

    database = Database("crash", Path(sys.argv[1]), DatabaseConfig(read_connections=1))
    session = database.open_session(read_only=False)
    done = threading.Event()
    def run(sql):
        done.clear()
        database.submit(session, lambda ctx: ctx.execute(sql), on_done=lambda o: done.set(),
                        budget=ResponseBudget(1 << 20, 1000), prefer_reader=False)
        done.wait()
    run("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v)")
    print("ready", flush=True)
    for i in range(1_000_000):
        run(f"INSERT INTO t(v) VALUES ({i})")
""")


def test_applied_index_matches_the_data_after_a_crash(tmp_path: Path) -> None:
    """SIGKILL a process in the middle of committing writes: after reopening, the
    stored index counts exactly the transactions whose rows are there."""
    path = tmp_path / "crash.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), str(path)],
                               stdout=subprocess.PIPE, env={**os.environ})
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        _wait_for_rows(path, 50)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    database = Database("crash", path, DatabaseConfig(read_connections=1))
    try:
        rows = query_file(path, "SELECT count(*) FROM t")[0][0]
        assert rows >= 50
        assert database.applied_index == rows + 1  # CREATE TABLE was transaction 1
        assert query_file(path, "PRAGMA integrity_check") == [("ok",)]
        assert _execute(database, "INSERT INTO t(v) VALUES ('after')").commit_index == rows + 2
    finally:
        database.close()


def _wait_for_rows(path: Path, count: int) -> None:
    event = threading.Event()
    for _ in range(2000):
        try:
            if query_file(path, "SELECT count(*) FROM t")[0][0] >= count:
                return
        except apsw.Error:
            pass
        event.wait(0.01)
    raise AssertionError("the writer process made no progress")


def test_divergence_is_never_resolved(make_node: Callable[..., Node]) -> None:
    """If applying an effect conflicts, the replica diverged: the apply fails (and here,
    the leader's commit with it) instead of overwriting anything."""
    node = make_node()
    session = node.session()
    node.execute(session, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    node.step.replica.execute("BEGIN; INSERT INTO t VALUES (1, 'replica only'); COMMIT")
    outcome = node.run(session, lambda ctx: ctx.execute("INSERT INTO t VALUES (1, 'leader')"))
    error = outcome.error
    assert isinstance(error, DivergenceError)
    assert "CONFLICT" in str(error)
    assert query_file(node.replica_path, "SELECT v FROM t") == [("replica only",)]
    assert query_file(node.path, "SELECT count(*) FROM t") == [(0,)]
    node.step.apply_errors.clear()
    node.step.replica.execute("BEGIN; DELETE FROM t; COMMIT")
