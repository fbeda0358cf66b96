"""The read pool: a few threads, each with its own read-only connection.

A job goes to the least busy reader, except that a session inside a read transaction
is pinned to the reader holding it. A job that turns out to need the writer
(``NeedsWriter``) is handed to the writer unchanged; whatever it read is discarded and
read again there.

A read transaction *holds* its reader's connection: no other session's job may run on
it (it would read the holder's snapshot, could end the holder's transaction, and would
get pinned itself). Such a job is handed back to the pool, which gives it to a free
reader, or parks it until a reader is released.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from edgelite.errors import DatabaseClosedError, OverloadedError
from edgelite.storage.connection import ConnectionLimits, Role, open_connection
from edgelite.storage.context import ReaderContext
from edgelite.storage.executor import StatementRunner
from edgelite.storage.session import Job, JobOutcome, NeedsWriter, SqlSession, TxnState
from edgelite.storage.statements import StatementCache

logger = logging.getLogger(__name__)


class Reader:
    def __init__(self, name: str, path: Path, limits: ConnectionLimits, timeout_ms: int,
                 cache: StatementCache, escalate: Callable[[Job], None],
                 applied_index: Callable[[], int], pool: ReaderPool) -> None:
        self.name = name
        self.connection = open_connection(path, Role.READER, limits).connection
        self.runner = StatementRunner(self.connection, timeout_ms)
        # The session whose read transaction holds the connection. Written only by this
        # reader's thread; the pool reads it to choose (a stale view is re-checked here).
        self.holder: SqlSession | None = None
        self._cache = cache
        self._escalate = escalate
        self._applied_index = applied_index
        self._pool = pool
        self._jobs: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"edgelite-{name}",
                                        daemon=True)
        self._thread.start()

    @property
    def load(self) -> int:
        return len(self._jobs)

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stopping:
                raise DatabaseClosedError(f"{self.name} is closing")
            self._jobs.append(job)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=30)
        self.connection.close()

    def _next(self) -> Job | None:
        with self._cond:
            while not self._jobs:
                if self._stopping:
                    return None
                self._cond.wait()
            return self._jobs.popleft()

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._run(job)
            except Exception:
                logger.exception("%s: unexpected failure", self.name)
        with self._cond:
            pending = list(self._jobs)
            self._jobs.clear()
        for job in pending:
            job.on_done(JobOutcome(None, DatabaseClosedError(f"{self.name} is closing"), None,
                                   self._applied_index()))

    def _run(self, job: Job) -> None:
        session = job.session
        if self.holder is not None and session is not self.holder:
            self._pool.redispatch(job)  # another session's read transaction holds us
            return
        try:
            self._run_job(job)
        finally:
            held_before = self.holder
            self.holder = session if self.connection.in_transaction else None
            if held_before is not None and self.holder is None:
                self._pool.dispatch_parked()

    def _run_job(self, job: Job) -> None:
        session = job.session
        applied = self._applied_index()
        if job.close_session:
            if session.txn is TxnState.READ and session.reader is self:
                self.connection.execute("ROLLBACK")
            session.leave_txn()
            session.closed = True
            job.on_done(JobOutcome(None, None, None, applied))
            return
        state = session.snapshot()
        ctx = ReaderContext(session, self.runner, self._cache, job.budget, self)
        try:
            value, error = job.program(ctx), None
        except NeedsWriter:
            if self.connection.in_transaction and state[0] is TxnState.NONE:
                self.connection.execute("ROLLBACK")
            session.restore(state)
            try:
                self._escalate(job)
            except Exception as exc:  # e.g. OverloadedError: the writer queue is full
                job.on_done(JobOutcome(None, exc, None, applied))
            return
        except Exception as exc:
            value, error = None, exc
        job.on_done(JobOutcome(value, error, None, applied))


class ReaderPool:
    def __init__(self, name: str, path: Path, count: int, limits: ConnectionLimits,
                 timeout_ms: int, cache: StatementCache, escalate: Callable[[Job], None],
                 applied_index: Callable[[], int], queue_max: int) -> None:
        assert count >= 1
        self._queue_max = queue_max
        self._turn = itertools.cycle(range(count))
        self._lock = threading.Lock()
        self._parked: collections.deque[Job] = collections.deque()
        self._applied_index = applied_index
        self._escalate = escalate
        self._stopping = False
        self.readers = [Reader(f"reader-{name}-{i}", path, limits, timeout_ms, cache,
                               escalate, applied_index, self) for i in range(count)]

    def submit(self, job: Job) -> None:
        """Queue ``job`` on its pinned reader or a free one; raise ``OverloadedError``."""
        pinned = job.session.reader
        if isinstance(pinned, Reader):
            pinned.submit(job)
            return
        with self._lock:
            if self._stopping:
                raise DatabaseClosedError("the read pool is closing")
            reader = self._free_reader()
            if reader is None and not job.session.reads_only:
                to_writer = True  # every connection is held: the writer can serve it
            elif reader is None:  # a read-only caller waits for a reader to be released
                if len(self._parked) >= self._queue_max:
                    raise OverloadedError(
                        "Too many concurrent requests: every read connection is held by an "
                        f"open read transaction and {len(self._parked)} reads are waiting "
                        "(read_queue_max)")
                self._parked.append(job)
                return
            else:
                to_writer = False
                if reader.load >= self._queue_max:
                    raise OverloadedError("Too many concurrent requests: every reader has "
                                          f"{reader.load} reads waiting (read_queue_max)")
        if to_writer:
            self._escalate(job)
        else:
            assert reader is not None
            reader.submit(job)

    def redispatch(self, job: Job) -> None:
        """A reader could not run ``job``; place it again, or answer it with the error."""
        try:
            self.submit(job)
        except Exception as exc:
            job.on_done(JobOutcome(None, exc, None, self._applied_index()))

    def dispatch_parked(self) -> None:
        """A reader was released: hand it the jobs that were waiting for one."""
        while True:
            with self._lock:
                reader = self._free_reader() if self._parked else None
                if reader is None:
                    return
                job = self._parked.popleft()
            try:
                reader.submit(job)
            except Exception as exc:
                job.on_done(JobOutcome(None, exc, None, self._applied_index()))

    def _free_reader(self) -> Reader | None:
        start = next(self._turn)
        order = self.readers[start:] + self.readers[:start]
        free = [reader for reader in order if reader.holder is None]
        return min(free, key=lambda r: r.load) if free else None

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            parked = list(self._parked)
            self._parked.clear()
        for reader in self.readers:
            reader.stop()
        for job in parked:
            job.on_done(JobOutcome(None, DatabaseClosedError("the read pool is closing"), None,
                                   self._applied_index()))
