"""One database (namespace): its file, its writer, its readers, its statement cache.

``Database.submit`` routes a job: sessions inside a write transaction go to the writer
(their own lane), sessions inside a read transaction to their pinned reader, read-only
callers and reads to the read pool, everything else to the writer. Completion is a
callback invoked on the storage thread; the asynchronous edge turns it into a future.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from edgelite.storage import effects
from edgelite.storage.applier import read_request
from edgelite.storage.connection import ConnectionLimits
from edgelite.storage.executor import ResponseBudget
from edgelite.storage.readers import ReaderPool
from edgelite.storage.session import (
    ApplyJob,
    Job,
    JobOutcome,
    Program,
    SqlSession,
    TxnState,
)
from edgelite.storage.statements import StatementCache
from edgelite.storage.writer import CommitStep, LocalCommitStep, Writer, WriterConfig


@dataclasses.dataclass(frozen=True, slots=True)
class DatabaseConfig:
    limits: ConnectionLimits = dataclasses.field(default_factory=ConnectionLimits)
    query_timeout_ms: int = 10_000
    read_connections: int = 4
    group_commit_max: int = 256
    write_queue_max: int = 4096
    read_queue_max: int = 8192
    txn_timeout_s: float = 5.0
    synchronous_full: bool = True
    db_size_bytes_max: int | None = None

    def writer_config(self) -> WriterConfig:
        return WriterConfig(self.limits, self.query_timeout_ms, self.group_commit_max,
                            self.write_queue_max, self.txn_timeout_s, self.synchronous_full,
                            self.db_size_bytes_max)


class Database:
    def __init__(self, name: str, path: Path, config: DatabaseConfig | None = None,
                 commit_step: CommitStep | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self.config = config or DatabaseConfig()
        self.cache = StatementCache()
        self.writer = Writer(name, self.path, self.config.writer_config(), self.cache,
                             commit_step or LocalCommitStep())
        self.readers = ReaderPool(name, self.path, self.config.read_connections,
                                  self.config.limits, self.config.query_timeout_ms,
                                  self.cache, self.writer.submit,
                                  lambda: self.writer.applied_index,
                                  self.config.read_queue_max)
        self.closed = False

    @property
    def applied_index(self) -> int:
        return self.writer.applied_index

    def open_session(self, *, read_only: bool) -> SqlSession:
        return SqlSession(read_only=read_only, database_name=self.name)

    def submit(self, session: SqlSession, program: Program, *, budget: ResponseBudget,
               on_done: Callable[[JobOutcome], None], prefer_reader: bool = True,
               request_id: str = "") -> None:
        """Run ``program`` for ``session``; ``on_done`` is called on a storage thread.

        ``request_id`` (optional) makes a retried write run at most once. Raises
        ``OverloadedError`` if the queue it needs is full.
        """
        job = Job(session, program, budget, on_done, request_id=request_id)
        if session.txn in (TxnState.WRITE, TxnState.ABORTED):
            self.writer.submit(job)
        elif session.txn is TxnState.READ or session.reads_only or prefer_reader:
            self.readers.submit(job)
        else:
            self.writer.submit(job)

    def submit_apply(self, index: int, effect: bytes, request_ids: Sequence[str],
                     on_done: Callable[[int, BaseException | None], None]) -> None:
        """Apply a committed log entry (on the writer thread, in submission order)."""
        self.writer.submit_apply(ApplyJob(index, effect, tuple(request_ids), on_done))

    def request_applied_at(self, request_id: str) -> int | None:
        """Blocking: the index the request with this id was applied at, if it was."""
        return read_request(self.path, request_id)

    def set_accepting_writes(self, accepting: bool) -> None:
        self.writer.accepting_writes = accepting

    def close_session(self, session: SqlSession,
                      on_done: Callable[[JobOutcome], None]) -> None:
        """Roll back whatever transaction the session has open and forget it."""
        job = Job(session, _nothing, ResponseBudget(0, 0), on_done, close_session=True)
        if session.txn is TxnState.READ:
            self.readers.submit(job)
        elif session.txn is TxnState.WRITE:
            self.writer.submit(job)
        else:
            session.closed = True
            on_done(JobOutcome(None, None, None, self.applied_index))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.readers.stop()
            self.writer.stop()


def _nothing(_ctx: object) -> None:
    return None


__all__ = ["Database", "DatabaseConfig", "effects"]
