"""The one writer of a database: a thread, a connection, group commit, the commit step.

Jobs queue here. Autocommit jobs that are waiting together run in one SQLite
transaction (a *group*), each write statement in its own savepoint; the group's effect
is captured (``TxnRecorder``), handed to the ``CommitStep`` (local fsync on a single
node, Raft in a cluster), and only then committed locally. No job learns its outcome
before its group committed. A job that begins an interactive transaction flushes the
group first, then its session *owns* the writer until COMMIT / ROLLBACK; others wait,
at most ``txn_timeout_s`` after the owner's transaction began, then the owner's
transaction is rolled back under it (its next statements fail with
TRANSACTION_TIMEOUT until it ends the transaction).

Invariants:
* the writer connection never commits without ``_commit_authorized`` (commit hook);
* ``applied_index`` only grows, and equals the index stored in ``_edgelite_state``;
* at most one real transaction is open, and ``recorder.active`` iff one is open.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import apsw

from edgelite.errors import (
    AlreadyAppliedError,
    DatabaseClosedError,
    NotLeaderError,
    OutcomeUnknownError,
    OverloadedError,
    SqlError,
    StorageError,
    StorageUnavailableError,
)
from edgelite.storage import effects
from edgelite.storage.applier import Applier, record_requests, request_applied_at
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.connection import ConnectionLimits, Role, open_connection
from edgelite.storage.context import WriterContext
from edgelite.storage.executor import StatementRunner
from edgelite.storage.session import (
    ApplyJob,
    GroupLost,
    Job,
    JobOutcome,
    SqlSession,
    TxnState,
)
from edgelite.storage.sqlite_errors import sql_error_from_apsw
from edgelite.storage.statements import StatementCache, StatementInfo
from edgelite.storage.sync_tables import RowClockStamper

logger = logging.getLogger(__name__)


class CommitStep(Protocol):
    """Makes a transaction's effect durable before the writer commits it locally."""

    def commit(self, database: str, effect: effects.Effect, applied_index: int,
               request_ids: Sequence[str] = ()) -> int:
        """Block until ``effect`` is durable; return the index it committed at.

        Raises (e.g. ``OutcomeUnknownError``, ``NotLeaderError``) if it could not be
        made durable; the writer then rolls the transaction back.
        """
        ...


class LocalCommitStep:
    """Single node: the local COMMIT (``synchronous=FULL``) is the durability point."""

    def commit(self, database: str, effect: effects.Effect, applied_index: int,
               request_ids: Sequence[str] = ()) -> int:
        return applied_index + 1


@dataclasses.dataclass(frozen=True, slots=True)
class WriterConfig:
    limits: ConnectionLimits = dataclasses.field(default_factory=ConnectionLimits)
    query_timeout_ms: int = 10_000
    group_commit_max: int = 256
    write_queue_max: int = 4096
    txn_timeout_s: float = 5.0
    synchronous_full: bool = True
    db_size_bytes_max: int | None = None  # client writes past it fail with SQLITE_FULL


@dataclasses.dataclass(slots=True)
class _Finished:
    job: Job
    value: Any
    error: BaseException | None
    commit_index: int | None
    state: tuple[Any, ...]


_STEAL = object()
# A committed entry the environment refused (disk full) is tried again after these waits.
APPLY_RETRY_FIRST_S = 0.05
APPLY_RETRY_MAX_S = 2.0


class Writer:
    def __init__(self, name: str, path: Path, config: WriterConfig, cache: StatementCache,
                 commit_step: CommitStep) -> None:
        self.name = name
        self.config = config
        self.cache = cache
        self.commit_step = commit_step
        opened = open_connection(path, Role.WRITER, config.limits,
                                 synchronous_full=config.synchronous_full)
        self.connection = opened.connection
        self.runner = StatementRunner(self.connection, config.query_timeout_ms)
        self.recorder = effects.TxnRecorder(self.connection)
        self._commit_authorized = False
        self.connection.set_commit_hook(self._commit_hook)
        with self._authorized_commit():
            effects.ensure_state_table(self.connection)
        if config.db_size_bytes_max is not None:
            self._limit_size(config.db_size_bytes_max)
        self.applied_index = effects.read_applied_index(self.connection)
        self.applier = Applier(path, config.limits, synchronous_full=config.synchronous_full)
        # Offline sync: rows of last-writer-wins tables get a clock at every commit.
        self.row_clocks = RowClockStamper()
        # Cluster hooks: whether client writes may start here (the leader, caught up),
        # and who hears that an entry this writer proposed is committed locally.
        self.accepting_writes = True
        # Monotonic time since which a committed entry waits for the disk (None: none).
        self.apply_stalled_since: float | None = None
        self.on_local_commit: Callable[[int, BaseException | None], None] | None = None
        self._job_request_id = ""
        self._txn_request_ids: list[str] = []
        self.txn_foreign_keys = False
        self.group_open = False
        self.owner: SqlSession | None = None
        self._finished: list[_Finished] = []
        self._general: collections.deque[Job] = collections.deque()
        self._owner_lane: collections.deque[Job] = collections.deque()
        self._apply_lane: collections.deque[ApplyJob] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"edgelite-writer-{name}",
                                        daemon=True)
        self._thread.start()

    # --- any thread ----------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stopping:
                raise DatabaseClosedError(f"database {self.name} is closing")
            if job.session is self.owner or job.close_session:
                self._owner_lane.append(job)
            elif len(self._general) >= self.config.write_queue_max:
                raise OverloadedError(
                    f"Too many concurrent requests: {len(self._general)} writes are waiting "
                    f"for database {self.name} (write_queue_max)")
            else:
                self._general.append(job)
            self._cond.notify()

    def submit_apply(self, job: ApplyJob) -> None:
        """Queue a committed entry; applies run before any client job that follows."""
        with self._cond:
            if self._stopping:
                raise DatabaseClosedError(f"database {self.name} is closing")
            self._apply_lane.append(job)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=30)
        self.applier.close()
        self.connection.close()

    # --- the loop (writer thread) ----------------------------------------------------------

    def _loop(self) -> None:
        while True:
            item = self._next_job()
            if item is None:
                break
            if item is _STEAL:
                self._steal_from_owner()
                continue
            if isinstance(item, ApplyJob):
                self._apply(item)
                continue
            assert isinstance(item, Job)
            try:
                if item.close_session:
                    self._close(item)
                elif item.solo or item.session is self.owner:
                    self._run_solo(item)
                else:
                    self._run_group(item)
            except Exception:  # a bug: never let it kill the writer silently
                logger.exception("writer %s: unexpected failure", self.name)
        self._shutdown()

    def _next_job(self) -> Job | ApplyJob | object | None:
        with self._cond:
            while True:
                if self._apply_lane:
                    return self._apply_lane.popleft()
                if self._owner_lane:
                    return self._owner_lane.popleft()
                owner = self.owner
                if owner is None and self._general:
                    return self._general.popleft()
                if owner is not None and self._general:
                    held_s = time.monotonic() - owner.txn_started_at
                    if held_s > self.config.txn_timeout_s:
                        return _STEAL
                    self._cond.wait(self.config.txn_timeout_s - held_s + 0.001)
                    continue
                if self._stopping:
                    return None
                self._cond.wait()

    def _shutdown(self) -> None:
        with self._cond:
            pending = list(self._owner_lane) + list(self._general)
            self._owner_lane.clear()
            self._general.clear()
        closing = DatabaseClosedError(f"database {self.name} is closing")
        for job in pending:
            self._deliver(job, None, closing, None)
        with self._cond:
            applies = list(self._apply_lane)
            self._apply_lane.clear()
        for apply_job in applies:
            apply_job.on_done(apply_job.index, closing)
        if self.recorder.active or self.connection.in_transaction:
            self.rollback_transaction()

    def _collect_group(self, first: Job) -> list[Job]:
        """``first`` and the autocommit jobs queued behind it, in order. A job whose
        request id is already in the group ends it: a retry queued beside its original
        (the client gave up waiting, e.g. on a stalled writer) must see the original
        committed, and the id is recorded only at commit (chaos: F8 duplicate)."""
        jobs = [first]
        request_ids = {first.request_id} if first.request_id else set()
        foreign_keys = first.session.foreign_keys
        with self._cond:
            while (self._general and len(jobs) < self.config.group_commit_max
                   and not self._general[0].solo
                   and self._general[0].session.foreign_keys == foreign_keys
                   and self._general[0].request_id not in request_ids):
                job = self._general.popleft()
                jobs.append(job)
                if job.request_id:
                    request_ids.add(job.request_id)
        return jobs

    def _requeue_front(self, jobs: list[Job]) -> None:
        with self._cond:
            self._general.extendleft(reversed(jobs))
            self._cond.notify()

    def _run_group(self, first: Job) -> None:
        jobs = self._collect_group(first)
        self._job_request_id = first.request_id
        try:
            self.begin_transaction(first.session.foreign_keys)
        except Exception as exc:
            for job in jobs:
                self._deliver(job, None, exc, None)
            return
        self.group_open = True
        self._finished = []
        for position, job in enumerate(jobs):
            if self._answered_before(job):
                continue
            self._job_request_id = job.request_id
            if job.request_id and position:
                self._txn_request_ids.append(job.request_id)
            state = job.session.snapshot()
            ctx = WriterContext(self, job.session, job.budget, grouped=True)
            try:
                value, error = job.program(ctx), None
            except GroupLost:
                self._group_lost(jobs[position:], state)
                return
            except Exception as exc:
                value, error = None, exc
            if ctx.left_group:
                self._deliver(job, value, error, ctx.commit_index)
                self._requeue_front(jobs[position + 1:])
                return
            self._finished.append(_Finished(job, value, error, ctx.commit_index, state))
        self._finish_group()

    def _finish_group(self) -> None:
        with contextlib.suppress(Exception):  # flush_group delivered the failure
            self.flush_group()

    def _group_lost(self, remaining: list[Job], state: tuple[Any, ...]) -> None:
        """The group's transaction was rolled back under a job: run each job alone."""
        self.group_open = False
        self.rollback_transaction()
        remaining[0].session.restore(state)
        redo = [item.job for item in self._finished] + remaining
        for item in self._finished:
            item.job.session.restore(item.state)
        self._finished = []
        for job in redo:
            job.solo = True
        self._requeue_front(redo)

    def _run_solo(self, job: Job) -> None:
        if self._answered_before(job):
            return
        self._job_request_id = job.request_id
        ctx = WriterContext(self, job.session, job.budget, grouped=False)
        try:
            value, error = job.program(ctx), None
        except Exception as exc:
            value, error = None, exc
        assert not self.group_open
        if job.session.txn is not TxnState.WRITE and self.owner is job.session:
            self.release_ownership(job.session)
        self._deliver(job, value, error, ctx.commit_index)

    def _answered_before(self, job: Job) -> bool:
        """A retry of a request that already committed is answered, not run again."""
        if not job.request_id:
            return False
        index = request_applied_at(self.connection, job.request_id)
        if index is None:
            return False
        self._deliver(job, None, AlreadyAppliedError(
            f"request {job.request_id} already committed at index {index}; it was not "
            "run again", request_id=job.request_id, index=index), index)
        return True

    def _apply(self, job: ApplyJob) -> None:
        """Apply a committed entry from the log (never one this writer committed)."""
        if self.owner is not None:
            self._steal_from_owner("this node stopped leading; the transaction was rolled "
                                   "back")
        error: BaseException | None = None
        if job.index > self.applied_index:
            try:
                self._apply_until_done(job.index, job.effect, job.request_ids)
            except Exception as exc:
                error = exc
                logger.error("database %s: applying index %d failed: %s", self.name,
                             job.index, exc)
        try:
            job.on_done(job.index, error)
        except Exception:
            logger.exception("writer %s: apply callback failed", self.name)

    def _apply_until_done(self, index: int, effect: bytes,
                          request_ids: Sequence[str]) -> None:
        """Apply a committed entry; while the environment refuses (disk full, I/O
        error) wait and try again: the entry is durable in the log, and every later
        write of this database waits behind it (F15: never wedge, never call it
        divergence). Raises ``DatabaseClosedError`` if the database closes meanwhile,
        and any other failure at once."""
        delay_s = APPLY_RETRY_FIRST_S
        while True:
            try:
                self.applier.apply(index, effect, request_ids)
            except StorageUnavailableError as exc:
                if self.apply_stalled_since is None:
                    self.apply_stalled_since = time.monotonic()
                    logger.error("database %s: applying index %d failed (%s); retrying "
                                 "until it succeeds", self.name, index, exc)
                with self._cond:
                    if self._stopping:
                        raise DatabaseClosedError(
                            f"database {self.name} closed before index {index} could be "
                            f"applied ({exc})") from exc
                    self._cond.wait(delay_s)
                delay_s = min(delay_s * 2, APPLY_RETRY_MAX_S)
                continue
            if self.apply_stalled_since is not None:
                logger.warning("database %s: applied index %d after %.1fs of retries",
                               self.name, index, time.monotonic() - self.apply_stalled_since)
                self.apply_stalled_since = None
            self.applied_index = index
            return

    def _close(self, job: Job) -> None:
        session = job.session
        if session.txn is TxnState.WRITE and self.owner is session:
            self.rollback_transaction()
        session.leave_txn()
        session.closed = True
        self.release_ownership(session)
        self._deliver(job, None, None, None)

    def _steal_from_owner(self, reason: str | None = None) -> None:
        owner = self.owner
        assert owner is not None
        self.rollback_transaction()
        owner.leave_txn()
        owner.txn = TxnState.ABORTED
        owner.abort_reason = reason or (
            f"Transaction timed out: it held the write lock longer than "
            f"{self.config.txn_timeout_s:g}s while other writes waited, and was rolled back")
        self.release_ownership(owner)
        logger.info("writer %s: rolled back a transaction that held the lock too long",
                    self.name)

    def _deliver(self, job: Job, value: Any, error: BaseException | None,
                 commit_index: int | None) -> None:
        outcome = JobOutcome(value, error, commit_index, self.applied_index)
        try:
            job.on_done(outcome)
        except Exception:
            logger.exception("writer %s: completion callback failed", self.name)

    # --- transaction mechanics (writer thread; used by WriterContext) ------------------------

    def begin_transaction(self, foreign_keys: bool) -> None:
        assert not self.connection.in_transaction and not self.recorder.active
        if not self.accepting_writes:
            raise NotLeaderError(f"database {self.name}: this node does not accept writes "
                                 "(it is not the leader, or is still catching up)")
        self._txn_request_ids = [self._job_request_id] if self._job_request_id else []
        if foreign_keys != self.txn_foreign_keys:
            with internal_statements(self.connection):
                self.runner.run_internal(f"PRAGMA foreign_keys={int(foreign_keys)}")
            self.txn_foreign_keys = foreign_keys
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            self.recorder.begin()
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise

    def commit_transaction(self) -> int | None:
        """Capture the effect, pass it through the commit step, then COMMIT locally."""
        self.row_clocks.before_commit(self.connection, self.recorder.changesets_so_far)
        effect = self.recorder.finish()
        index = None
        request_ids = tuple(self._txn_request_ids)
        if not effect.is_empty:
            index = self.commit_step.commit(self.name, effect, self.applied_index,
                                            request_ids)
            assert index > self.applied_index, (index, self.applied_index)
            record_requests(self.connection, request_ids, index)
            effects.write_applied_index(self.connection, index)
        try:
            with self._authorized_commit():
                self.connection.execute("COMMIT")
        except apsw.Error as exc:
            self.rollback_transaction()
            if index is None:
                raise StorageError(f"database {self.name}: commit failed: {exc}") from exc
            if self._committed_anyway(index):
                # COMMIT reported an error after committing (the WAL auto-checkpoint that
                # follows it failed): applying the effect again would double it.
                logger.warning("database %s: COMMIT of index %d reported %s after it "
                               "committed", self.name, index, exc)
                self.applied_index = index
                if self.on_local_commit is not None:
                    self.on_local_commit(index, None)
                return index
            # The entry is committed in the Raft log (the write is durable cluster-wide):
            # only this copy failed. Apply it from the effect, waiting out a full disk;
            # the caller's answer stays the truth ("committed"), not a storage error.
            logger.error("database %s: local commit of index %d failed (%s); applying it "
                         "again", self.name, index, exc)
            try:
                self._apply_until_done(index, effects.encode_effect(effect), request_ids)
            except Exception as apply_error:
                if self.on_local_commit is not None:
                    self.on_local_commit(index, apply_error)  # applied from the log later
                raise OutcomeUnknownError(
                    f"database {self.name}: the write committed at index {index} but this "
                    f"node could not apply it yet ({apply_error}); ask GET /v1/requests/"
                    f"<id> or read it back", request_id=request_ids[0] if request_ids
                    else "") from apply_error
        if index is not None:
            self.applied_index = index
            if self.on_local_commit is not None:
                self.on_local_commit(index, None)
        return index

    def _committed_anyway(self, index: int) -> bool:
        try:
            return effects.read_applied_index(self.connection) >= index
        except apsw.Error:
            return False

    def rollback_transaction(self) -> None:
        if self.recorder.active:
            self.recorder.abandon()
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def flush_group(self) -> int | None:
        """Commit the open group now and deliver its finished jobs.

        Called at the end of a group, and by a job that begins an interactive
        transaction (its earlier autocommit statements commit with the group).
        On failure every finished job gets the error, and it is re-raised.
        """
        assert self.group_open
        finished, self._finished = self._finished, []
        self.group_open = False
        try:
            index = self.commit_transaction()
        except Exception as exc:
            self.rollback_transaction()
            for item in finished:
                self._deliver(item.job, None, exc, None)
            raise
        for item in finished:
            self._deliver(item.job, item.value, item.error,
                          _max_index(index, item.commit_index))
        return index

    def take_ownership(self, session: SqlSession) -> None:
        with self._cond:
            assert self.owner is None, "the writer already has an owner"
            self.owner = session

    def release_ownership(self, session: SqlSession) -> None:
        with self._cond:
            if self.owner is session:
                self.owner = None
                self._cond.notify()

    def check_deferred_foreign_keys(self) -> None:
        pending, _ = self.connection.status(apsw.SQLITE_DBSTATUS_DEFERRED_FKS)
        if pending:
            raise SqlError("SQLite error: FOREIGN KEY constraint failed",
                           code="SQLITE_CONSTRAINT", sqlite_code=apsw.SQLITE_CONSTRAINT,
                           extended_code=apsw.SQLITE_CONSTRAINT_FOREIGNKEY)

    def replicate_created_table(self, info: StatementInfo) -> None:
        """Make ``CREATE TABLE … AS SELECT`` deterministic on replicas.

        Replicas get the resulting table definition (a DDL segment) and its rows as
        ordinary inserts in the next changeset, never the query.
        """
        table = info.created_table
        quoted = _quote(table)
        run = self.runner.run_internal
        schema_sql = self._internal_query(
            "SELECT sql FROM main.sqlite_schema WHERE type='table' AND name=?", (table,))[0][0]
        columns = [row[1] for row in self._internal_query(
            f"PRAGMA main.table_info({quoted})", ())]
        with internal_statements(self.connection):
            run(f"CREATE TEMP TABLE _edgelite_ctas AS SELECT rowid AS _edgelite_rowid, * "
                f"FROM main.{quoted}")
            run(f"DELETE FROM main.{quoted}")
        self.recorder.after_ddl(str(schema_sql))
        column_list = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        with internal_statements(self.connection):
            run(f"INSERT INTO main.{quoted}(rowid, {column_list}) "
                "SELECT * FROM temp._edgelite_ctas")
            run("DROP TABLE temp._edgelite_ctas")

    def table_exists(self, table: str) -> bool:
        return bool(self._internal_query(
            "SELECT 1 FROM main.sqlite_schema WHERE type='table' AND name=?", (table,)))

    def before_drop_table(self, info: StatementInfo) -> None:
        """Make ``DROP TABLE`` of a foreign-key parent deterministic on replicas.

        With foreign keys on, SQLite empties a parent table before dropping it, after
        dropping its triggers, so ON DELETE actions change child tables. Replicas apply
        with foreign keys off, so those changes must travel as rows: drop the triggers
        (DDL segments), delete the rows while the session records, then let the DROP run
        on an empty table. Called after ``before_ddl``, inside the DDL's savepoint.
        """
        table = info.dropped_table
        if table is None or not self.txn_foreign_keys or not self._is_fk_parent(table):
            return
        quoted = _quote(table)
        triggers = [str(row[0]) for row in self._internal_query(
            "SELECT name FROM main.sqlite_schema WHERE type='trigger' AND tbl_name=?",
            (table,))]
        for trigger in triggers:
            drop = f"DROP TRIGGER main.{_quote(trigger)}"
            with internal_statements(self.connection):
                self.runner.run_internal(drop)
            self.recorder.after_ddl(drop)
            self.recorder.before_ddl()
        self.recorder.after_ddl(None)
        try:
            self.runner.run_internal(f"DELETE FROM main.{quoted}")
        except apsw.Error as exc:
            raise sql_error_from_apsw(exc, phase="step") from exc
        self.recorder.before_ddl()

    def _is_fk_parent(self, table: str) -> bool:
        return bool(self._internal_query(
            "SELECT 1 FROM main.sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f "
            "WHERE m.type='table' AND f.\"table\"=? COLLATE NOCASE LIMIT 1", (table,)))

    def _internal_query(self, sql: str, bindings: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        # Uncached: a statement prepared without the authorizer must never be reused
        # for a client's identical text.
        with internal_statements(self.connection):
            return list(self.connection.cursor().execute(sql, bindings, can_cache=False))

    def _limit_size(self, size_bytes: int) -> None:
        # Only the leader's writer: replicas must apply whatever the leader committed.
        page_size = int(self._internal_query("PRAGMA page_size", ())[0][0])
        pages = max(1, size_bytes // page_size)
        self._internal_query(f"PRAGMA max_page_count = {pages}", ())

    def _commit_hook(self) -> bool:
        # True turns the commit into a rollback: nothing commits that did not pass
        # through commit_transaction (and so through the commit step).
        return not self._commit_authorized

    @contextlib.contextmanager
    def _authorized_commit(self) -> Iterator[None]:
        self._commit_authorized = True
        try:
            yield
        finally:
            self._commit_authorized = False


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _max_index(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
