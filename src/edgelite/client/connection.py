"""The blocking DB-API shell: ``Connection`` and ``Cursor`` over a ``ClientSession``.

Each method checks the object is usable, asks the session for an operation and runs it
on the transport (``drive_sync``). Nothing here decides protocol or transactions.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from edgelite.client import errors
from edgelite.client.cursor_state import CursorState
from edgelite.client.errors import NotSupportedError, ProgrammingError
from edgelite.client.exchange import Flow, SyncTransport, T, drive_sync
from edgelite.client.outcome import Description
from edgelite.client.session import ClientSession, TransactionControl

__all__ = ["Connection", "Cursor"]

RowFactory = Callable[[Any, tuple[Any, ...]], Any]


class Connection:
    """A DB-API 2.0 connection to an edgelite/libSQL server or a local file."""

    # PEP 249 optional extension (as sqlite3): the exception classes on the connection.
    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(self, session: ClientSession, transport: SyncTransport, *,
                 check_same_thread: bool = True) -> None:
        self._session = session
        self._transport = transport
        self._thread_id = threading.get_ident() if check_same_thread else None
        self.row_factory: RowFactory | None = None
        self.text_factory: Any = str

    # --- plumbing ------------------------------------------------------------------------

    def _check(self) -> None:
        if self._session.closed:
            raise ProgrammingError("Cannot operate on a closed database.", code="CLIENT_CLOSED")
        if self._thread_id is not None and self._thread_id != threading.get_ident():
            raise ProgrammingError(
                "SQLite objects created in a thread can only be used in that same thread. "
                f"The object was created in thread id {self._thread_id} and this is thread "
                f"id {threading.get_ident()}.", code="CLIENT_THREAD")

    def _run(self, flow: Flow[T]) -> T:
        return drive_sync(flow, self._transport)

    # --- PEP 249 -------------------------------------------------------------------------

    def cursor(self, factory: Callable[[Connection], Cursor] | None = None) -> Cursor:
        self._check()
        return (factory or Cursor)(self)

    def commit(self) -> None:
        self._check()
        self._run(self._session.commit())

    def rollback(self) -> None:
        self._check()
        self._run(self._session.rollback())

    def close(self) -> None:
        """Close; an uncommitted transaction is rolled back (as sqlite3)."""
        if self._session.closed:
            return
        if self._thread_id is not None:
            self._check()
        try:
            self._run(self._session.close())
        finally:
            self._transport.close()

    def __del__(self) -> None:
        # An unclosed connection still releases its sockets (the server rolls back an
        # open transaction when its stream goes). No round trip, nothing that waits.
        session = getattr(self, "_session", None)
        if session is not None and not session.closed:
            session.closed = True
            with contextlib.suppress(Exception):
                release = getattr(self._transport, "abort", self._transport.close)
                release()

    def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> Cursor:
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, script: str) -> Cursor:
        return self.cursor().executescript(script)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Commit on success, roll back on an exception; the connection stays open."""
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    # --- sqlite3 attributes ----------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        self._check()
        return self._session.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._session.isolation_level

    @isolation_level.setter
    def isolation_level(self, level: str | None) -> None:
        self._check()
        self._run(self._session.set_isolation_level(level))

    @property
    def autocommit(self) -> bool | int:
        control = self._session.control
        if control is TransactionControl.LEGACY:
            return -1
        return control is TransactionControl.AUTOCOMMIT

    @autocommit.setter
    def autocommit(self, value: bool | int) -> None:
        self._check()
        self._run(self._session.set_autocommit(value))

    @property
    def replication_index(self) -> int | None:
        """The highest replication index this connection has seen (None: none yet)."""
        return self._session.replication_index

    @property
    def consistency(self) -> str:
        return self._session.consistency

    def create_function(self, name: str, narg: int, func: Callable[..., Any] | None, *,
                        deterministic: bool = False) -> None:
        """Local databases only: a remote server cannot run Python code."""
        self._check()
        create = getattr(self._transport, "create_function", None)
        if create is None:
            raise NotSupportedError("create_function() needs a local database; a remote "
                                    "server cannot call Python functions")
        create(name, narg, func, deterministic=deterministic)

    def interrupt(self) -> None:
        raise NotSupportedError("interrupt() is not supported by edgelite connections")


class Cursor:
    """A DB-API 2.0 cursor. Results are fetched whole, so ``rowcount`` is known at once."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._state = CursorState(connection.row_factory)

    # --- results -------------------------------------------------------------------------

    @property
    def description(self) -> Description | None:
        return self._state.description

    @property
    def rowcount(self) -> int:
        return self._state.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._state.lastrowid

    @property
    def arraysize(self) -> int:
        return self._state.arraysize

    @arraysize.setter
    def arraysize(self, size: int) -> None:
        self._state.arraysize = size

    @property
    def row_factory(self) -> RowFactory | None:
        return self._state.row_factory

    @row_factory.setter
    def row_factory(self, factory: RowFactory | None) -> None:
        self._state.row_factory = factory

    # --- operations ----------------------------------------------------------------------

    def _prepare(self) -> ClientSession:
        self.connection._check()
        self._state.reset()
        return self.connection._session

    def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        session = self._prepare()
        outcome = self.connection._run(session.execute(sql, parameters))
        self._state.load(outcome, self.connection.text_factory)
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> Cursor:
        session = self._prepare()
        outcome = self.connection._run(session.executemany(sql, seq_of_parameters))
        self._state.load(outcome)
        return self

    def executescript(self, script: str) -> Cursor:
        session = self._prepare()
        self._state.load(self.connection._run(session.executescript(script)))
        return self

    def fetchone(self) -> Any:
        return self._state.fetchone(self)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._state.fetchmany(self, size)

    def fetchall(self) -> list[Any]:
        return self._state.fetchall(self)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        row = self._state.fetchone(self)
        if row is None:
            raise StopIteration
        return row

    def close(self) -> None:
        self._state.close()

    def setinputsizes(self, sizes: Any) -> None:
        """PEP 249: may do nothing."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """PEP 249: may do nothing."""

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
