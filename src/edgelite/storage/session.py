"""Sessions and jobs: the unit of client state and the unit of work in storage.

A ``SqlSession`` is what a Hrana stream (or a one-shot request) looks like to
storage: whether its caller may write, whether it is inside a transaction (a *virtual*
autocommit flag: the writer connection is shared, so SQLite's own flag says nothing
about one client), its savepoints and its foreign-key setting.

A ``Job`` is a *program* — a callable that receives a ``SqlContext`` and runs
statements through it — plus the session it runs for and a completion callback. A
program may be run more than once (if the group transaction it ran in was lost, or if
it started on a reader and turned out to need the writer); only the last run counts,
so programs must not change anything outside themselves while they run.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgelite.storage.context import SqlContext
    from edgelite.storage.executor import ResponseBudget
    from edgelite.storage.readers import Reader

_session_ids = itertools.count(1)


class TxnState(enum.Enum):
    NONE = "none"  # autocommit
    WRITE = "write"  # owns the database's writer
    READ = "read"  # pinned to one reader connection
    ABORTED = "aborted"  # rolled back under the client (timeout); awaits ROLLBACK


@dataclasses.dataclass(eq=False, slots=True)
class SqlSession:
    """Per-client transaction state. Touched only by the storage thread running it."""

    read_only: bool  # the caller may only read (its credentials)
    database_name: str = "default"
    write_blocked_reason: str | None = None  # the namespace blocks writes (admin config)
    session_id: int = dataclasses.field(default_factory=lambda: next(_session_ids))
    txn: TxnState = TxnState.NONE
    txn_started_at: float = 0.0
    readonly_txn: bool = False  # BEGIN READONLY on the writer: writes are refused
    started_by_savepoint: bool = False
    savepoints: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    foreign_keys: bool = False
    last_insert_rowid: int = 0  # SQLite's per-connection value, kept per client
    reader: Reader | None = None
    abort_reason: str = ""
    closed: bool = False

    @property
    def reads_only(self) -> bool:
        """Only reads may run for this session (credentials or a write block)."""
        return self.read_only or self.write_blocked_reason is not None

    @property
    def is_autocommit(self) -> bool:
        return self.txn is TxnState.NONE

    def snapshot(self) -> tuple[Any, ...]:
        return (self.txn, self.txn_started_at, self.readonly_txn, self.started_by_savepoint,
                list(self.savepoints), self.foreign_keys, self.reader, self.abort_reason,
                self.last_insert_rowid)

    def restore(self, state: tuple[Any, ...]) -> None:
        (self.txn, self.txn_started_at, self.readonly_txn, self.started_by_savepoint,
         savepoints, self.foreign_keys, self.reader, self.abort_reason,
         self.last_insert_rowid) = state
        self.savepoints = list(savepoints)

    def enter_write_txn(self, *, by_savepoint: bool, readonly: bool) -> None:
        assert self.txn is TxnState.NONE
        self.txn = TxnState.WRITE
        self.txn_started_at = time.monotonic()
        self.started_by_savepoint = by_savepoint
        self.readonly_txn = readonly
        self.savepoints = []

    def leave_txn(self) -> None:
        self.txn = TxnState.NONE
        self.readonly_txn = False
        self.started_by_savepoint = False
        self.savepoints = []
        self.reader = None
        self.abort_reason = ""


Program = Callable[["SqlContext"], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended. ``commit_index``: highest index a write of this job committed
    at (None if it wrote nothing); ``applied_index``: the database's index when the
    job finished (what its reads reflect at least)."""

    value: Any
    error: BaseException | None
    commit_index: int | None
    applied_index: int


@dataclasses.dataclass(eq=False, slots=True)
class Job:
    session: SqlSession
    program: Program
    budget: ResponseBudget
    on_done: Callable[[JobOutcome], None]
    enqueued_at: float = dataclasses.field(default_factory=time.monotonic)
    solo: bool = False  # never group (re-run after a lost group transaction)
    close_session: bool = False  # end the session's transaction and forget it
    request_id: str = ""  # the client's id for exactly-once retries ("" = none)


@dataclasses.dataclass(eq=False, slots=True)
class ApplyJob:
    """A committed log entry for this database, applied on the writer thread."""

    index: int
    effect: bytes
    request_ids: tuple[str, ...]
    on_done: Callable[[int, BaseException | None], None]


class NeedsWriter(BaseException):
    """Raised inside a reader when a statement needs the writer; the job moves there.

    A BaseException so that programs catching ``Exception`` cannot swallow it.
    """


class GroupLost(BaseException):
    """The shared group transaction was rolled back under a job (e.g. by an
    ``OR ROLLBACK`` conflict); every job of the group is re-run on its own."""
