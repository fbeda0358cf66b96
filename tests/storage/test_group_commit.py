"""Group commit: waiting autocommit jobs share one transaction, each statement in its
own savepoint, and every job still gets exactly its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from edgelite.errors import AlreadyAppliedError, OutcomeUnknownError, SqlError
from edgelite.storage import effects
from edgelite.storage.context import SqlContext
from edgelite.storage.database import DatabaseConfig
from edgelite.storage.executor import StatementResult

from .conftest import Node, Waiter, big_budget, query_file


class CommitGate:
    """Holds the next commit of the writer until ``release()``; meanwhile jobs queue."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.entered = threading.Event()
        self._open = threading.Event()
        self.fail_with: BaseException | None = None
        node.step.gate = self._gate

    def _gate(self, _effect: effects.Effect) -> None:
        self.node.step.gate = None  # only the first commit waits
        self.entered.set()
        assert self._open.wait(20), "gate never released"
        if self.fail_with is not None:
            raise self.fail_with

    def hold(self, session_sql: str = "INSERT INTO t(v) VALUES ('holder')") -> Waiter:
        """Start a write whose commit blocks in the gate."""
        waiter = self.node.submit(self.node.session(),
                                  lambda ctx: ctx.execute(session_sql), prefer_reader=False)
        assert self.entered.wait(10)
        return waiter

    def release(self) -> None:
        self._open.set()


def _insert(value: object, sql: str = "INSERT INTO t(v) VALUES (?)"
            ) -> Callable[[SqlContext], StatementResult]:
    return lambda ctx: ctx.execute(sql, (value,))


@pytest.fixture
def table_node(node: Node) -> Node:
    session = node.session()
    node.execute(session, "CREATE TABLE t (id INTEGER PRIMARY KEY, v UNIQUE)")
    return node


def test_concurrent_inserts_group_and_each_is_acknowledged_once(table_node: Node) -> None:
    node = table_node
    gate = CommitGate(node)
    holder = gate.hold()
    commits_before = node.step.commit_count
    waiters: dict[object, Waiter] = {}
    lock = threading.Lock()

    def worker(worker_id: int) -> None:
        session = node.session()
        for i in range(25):
            value = f"w{worker_id}-{i}" if i % 10 else "duplicate"  # some conflicts
            key = (worker_id, i)
            waiter = node.submit(session, _insert(value), prefer_reader=bool(i % 2))
            with lock:
                waiters[key] = waiter
            if i % 5 == 4:
                waiter.wait()  # mix waiting and pipelining

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    # Release the held commit once a good number of jobs is waiting behind it.
    for _ in range(500):
        with lock:
            if len(waiters) >= 16:
                break
        threading.Event().wait(0.01)
    gate.release()
    for thread in threads:
        thread.join(timeout=30)
    assert holder.wait().error is None
    outcomes = {key: waiter.wait() for key, waiter in waiters.items()}
    assert all(waiter.acknowledgements == 1 for waiter in waiters.values())
    ok = {key: o for key, o in outcomes.items() if o.error is None}
    failed = {key: o for key, o in outcomes.items() if o.error is not None}
    # Exactly one "duplicate" insert wins; every other one is a constraint error.
    assert len(failed) == 8 * 3 - 1
    assert all(isinstance(o.error, SqlError) and o.error.code == "SQLITE_CONSTRAINT"
               for o in failed.values())
    rows = dict(query_file(node.path, "SELECT id, v FROM t"))
    assert len(rows) == 1 + len(ok)
    for (worker_id, i), outcome in ok.items():
        result = outcome.value
        assert isinstance(result, StatementResult)
        assert result.affected_row_count == 1
        expected = f"w{worker_id}-{i}" if i % 10 else "duplicate"
        assert rows[result.last_insert_rowid] == expected
        assert outcome.commit_index is not None
        assert outcome.commit_index <= outcome.applied_index
    inserts = len(ok)
    commits = node.step.commit_count - commits_before
    assert commits < inserts, (commits, inserts)
    largest = max(len(list(_rows_inserted(e))) for _, e in node.step.commits)
    assert largest > 1
    node.assert_replica_matches()


def _rows_inserted(effect: effects.Effect) -> list[object]:
    import apsw

    return [c.opcode for s in effect.segments if s.kind is effects.SegmentKind.CHANGESET
            for c in apsw.Changeset.iter(s.payload)]


def _queue_behind_gate(node: Node, programs: list[Callable[[SqlContext], object]], *,
                       foreign_keys: list[bool] | None = None) -> tuple[Waiter, list[Waiter]]:
    """Hold the writer, queue ``programs`` (one session each), return their waiters."""
    gate = CommitGate(node)
    holder = gate.hold()
    waiters = []
    for position, program in enumerate(programs):
        session = node.session()
        if foreign_keys and foreign_keys[position]:
            node.execute(session, "PRAGMA foreign_keys=ON")
        waiters.append(node.submit(session, program, prefer_reader=False))
    gate.release()
    return holder, waiters


def test_a_failing_job_does_not_affect_its_group(table_node: Node) -> None:
    node = table_node
    node.execute(node.session(), "INSERT INTO t(v) VALUES ('taken')")

    def two_statements(ctx: SqlContext) -> None:
        ctx.execute("INSERT INTO t(v) VALUES ('kept')")  # its own autocommit statement
        ctx.execute("INSERT INTO t(v) VALUES ('taken')")

    holder, waiters = _queue_behind_gate(node, [
        _insert("a"), two_statements, _insert("taken"), _insert("b")])
    holder.wait()
    outcomes = [w.wait() for w in waiters]
    assert [o.error is None for o in outcomes] == [True, False, False, True]
    assert all(o.error.code == "SQLITE_CONSTRAINT" for o in outcomes if o.error)
    values = {v for (v,) in query_file(node.path, "SELECT v FROM t")}
    assert values == {"taken", "holder", "a", "kept", "b"}
    node.assert_replica_matches()


def test_insert_or_rollback_conflict_reruns_the_group_alone(table_node: Node) -> None:
    """OR ROLLBACK ends the shared transaction: every job is re-run on its own and the
    outcomes are exactly what they would have been without grouping."""
    node = table_node
    node.execute(node.session(), "INSERT INTO t(v) VALUES ('taken')")
    runs: dict[str, int] = {}

    def counted(name: str, sql: str) -> Callable[[SqlContext], StatementResult]:
        def program(ctx: SqlContext) -> StatementResult:
            runs[name] = runs.get(name, 0) + 1
            return ctx.execute(sql)
        return program

    programs = [
        counted("a", "INSERT INTO t(v) VALUES ('a')"),
        counted("b", "INSERT INTO t(v) VALUES ('b')"),
        counted("rollback", "INSERT OR ROLLBACK INTO t(v) VALUES ('taken')"),
        counted("c", "INSERT INTO t(v) VALUES ('c')"),
    ]
    holder, waiters = _queue_behind_gate(node, programs)
    holder.wait()
    outcomes = [w.wait() for w in waiters]
    assert [o.error is None for o in outcomes] == [True, True, False, True]
    assert outcomes[2].error.code == "SQLITE_CONSTRAINT"  # type: ignore[union-attr]
    rows = dict(query_file(node.path, "SELECT v, id FROM t"))
    for name, outcome in zip(["a", "b", None, "c"], outcomes, strict=True):
        if name is not None:
            assert rows[name] == outcome.value.last_insert_rowid
    assert sorted(rows) == ["a", "b", "c", "holder", "taken"]  # nothing duplicated
    assert runs["a"] == 2 and runs["b"] == 2 and runs["c"] == 1  # re-run alone
    node.assert_replica_matches()


def test_deferred_foreign_key_violation_fails_only_that_statement(node: Node) -> None:
    session = node.session()
    node.script(session, """
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (id INTEGER PRIMARY KEY,
            pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
        CREATE TABLE t (id INTEGER PRIMARY KEY, v UNIQUE);
    """)
    programs = [
        _insert(1, "INSERT INTO parent VALUES (?)"),
        _insert(99, "INSERT INTO child(pid) VALUES (?)"),  # violates, deferred
        _insert(1, "INSERT INTO child(pid) VALUES (?)"),
        _insert(98, "INSERT INTO child(pid) VALUES (?)"),  # foreign keys off: allowed
    ]
    holder, waiters = _queue_behind_gate(node, programs,
                                         foreign_keys=[True, True, True, False])
    holder.wait()
    outcomes = [w.wait() for w in waiters]
    assert [o.error is None for o in outcomes] == [True, False, True, True]
    error = outcomes[1].error
    assert isinstance(error, SqlError) and error.code == "SQLITE_CONSTRAINT"
    assert "FOREIGN KEY" in str(error)
    assert query_file(node.path, "SELECT pid FROM child ORDER BY id") == [(1,), (98,)]
    # The same statement outside a group (its own implicit transaction) fails the same way.
    fk = node.session()
    node.execute(fk, "PRAGMA foreign_keys=ON")
    with pytest.raises(SqlError, match="FOREIGN KEY"):
        node.execute(fk, "INSERT INTO child(pid) VALUES (97)")
    node.assert_replica_matches()


def test_commit_step_failure_fails_the_whole_group_and_nothing_commits(
        table_node: Node) -> None:
    node = table_node
    gate = CommitGate(node)
    gate.fail_with = OutcomeUnknownError("consensus lost", request_id="r-1")
    holder = gate.hold()
    waiters = [node.submit(node.session(), _insert(f"v{i}"), prefer_reader=False)
               for i in range(5)]
    # While the commit is held, readers do not see the group's rows.
    readers_saw = node.rows(node.session(), "SELECT count(*) FROM t")
    gate.release()
    holder_outcome = holder.wait()
    assert isinstance(holder_outcome.error, OutcomeUnknownError)
    outcomes = [w.wait() for w in waiters]
    assert readers_saw == [(0,)]
    # The holder's group failed; the queued jobs formed the next group and committed.
    assert all(o.error is None for o in outcomes)
    assert query_file(node.path, "SELECT count(*) FROM t WHERE v = 'holder'") == [(0,)]
    assert node.rows(node.session(), "SELECT count(*) FROM t") == [(5,)]
    node.assert_replica_matches()


def test_a_job_that_begins_a_transaction_flushes_the_group(table_node: Node) -> None:
    node = table_node

    def interactive(ctx: SqlContext) -> int | None:
        ctx.execute("INSERT INTO t(v) VALUES ('before begin')")
        ctx.execute("BEGIN")
        ctx.execute("INSERT INTO t(v) VALUES ('in txn')")
        ctx.execute("COMMIT")
        return ctx.execute("INSERT INTO t(v) VALUES ('after commit')").last_insert_rowid

    holder, waiters = _queue_behind_gate(node, [_insert("a"), interactive, _insert("c")])
    holder.wait()
    outcomes = [w.wait() for w in waiters]
    assert all(o.error is None for o in outcomes), outcomes
    values = [v for (v,) in query_file(node.path, "SELECT v FROM t ORDER BY id")]
    assert values == ["holder", "a", "before begin", "in txn", "after commit", "c"]
    node.assert_replica_matches()


def test_flush_failure_when_a_job_begins_mid_group(table_node: Node) -> None:
    """The group commit triggered by a job's BEGIN fails: the finished jobs and that job
    get the error, the rest run later, and the writer keeps working."""
    node = table_node
    owner = node.session()
    node.execute(owner, "BEGIN")  # hold the writer so that the group forms behind it

    def interactive(ctx: SqlContext) -> None:
        ctx.execute("BEGIN")
        ctx.execute("INSERT INTO t(v) VALUES ('in txn')")
        ctx.execute("COMMIT")

    waiters = [node.submit(node.session(), program, prefer_reader=False)
               for program in (_insert("a"), interactive, _insert("c"))]
    node.step.gate = _fail_once(node, OutcomeUnknownError("lost", request_id="r-2"))
    node.execute(owner, "COMMIT")  # empty: no commit step call
    outcomes = [w.wait() for w in waiters]
    assert isinstance(outcomes[0].error, OutcomeUnknownError)
    assert isinstance(outcomes[1].error, OutcomeUnknownError)
    assert outcomes[2].error is None
    node.execute(node.session(), "INSERT INTO t(v) VALUES ('later')")
    values = {v for (v,) in query_file(node.path, "SELECT v FROM t")}
    assert values == {"c", "later"}
    node.assert_replica_matches()


def _fail_once(node: Node, error: BaseException) -> Callable[[effects.Effect], None]:
    def gate(_effect: effects.Effect) -> None:
        node.step.gate = None
        raise error
    return gate


def test_group_commit_max_bounds_a_group(make_node: Callable[..., Node]) -> None:
    node = make_node(DatabaseConfig(read_connections=1, group_commit_max=3))
    node.execute(node.session(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v UNIQUE)")
    holder, waiters = _queue_behind_gate(node, [_insert(i) for i in range(9)])
    holder.wait()
    assert all(w.wait().error is None for w in waiters)
    sizes = [len(_rows_inserted(e)) for _, e in node.step.commits[-3:]]
    assert sizes == [3, 3, 3]
    node.assert_replica_matches()


def test_a_retry_queued_beside_its_original_runs_once(table_node: Node) -> None:
    """A client that gave up waiting (a stalled writer) retries with the same request id
    while the original is still queued: both must not run in one group (the id is
    recorded at commit), so the retry waits for the next group and is answered
    ALREADY_APPLIED."""
    node = table_node
    gate = CommitGate(node)
    holder = gate.hold()
    waiters = []
    for value in ("original", "retry", "other"):
        waiter = Waiter()
        request_id = "" if value == "other" else "req-same"
        node.db.submit(node.session(), _insert(value), budget=big_budget(),
                       on_done=waiter.done, prefer_reader=False, request_id=request_id)
        waiters.append(waiter)
    gate.release()
    assert holder.wait().error is None
    original, retry, other = (w.wait() for w in waiters)
    assert original.error is None and other.error is None
    assert isinstance(retry.error, AlreadyAppliedError)
    assert retry.error.index == original.commit_index
    assert query_file(node.path, "SELECT v FROM t WHERE v != 'holder' ORDER BY id") == [
        ("original",), ("other",)]
