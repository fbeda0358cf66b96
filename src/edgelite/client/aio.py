"""The asyncio DB-API shell: the same API as ``edgelite.connect``, awaited.

::

    import edgelite.aio

    async with edgelite.aio.connect("http://127.0.0.1:8080") as conn:   # closed at exit
        cur = await conn.execute("SELECT id, title FROM posts WHERE id = ?", (1,))
        print(await cur.fetchall())
        async with conn:                      # a transaction: commit, or rollback on error
            await conn.execute("INSERT INTO posts (title) VALUES (?)", ("hi",))
        async for row in await conn.execute("SELECT title FROM posts"):
            print(row)

``conn = await edgelite.aio.connect(...)`` works too (then ``await conn.close()``). The
session is the same sans-IO ``ClientSession`` the blocking shell drives; operations on
one connection are serialised by a lock, so tasks may share a connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import Any

from edgelite.client import errors
from edgelite.client.cursor_state import CursorState
from edgelite.client.errors import NotSupportedError, ProgrammingError
from edgelite.client.exchange import AsyncTransport, Flow, Pipeline, Sleep, T, WireError
from edgelite.client.outcome import Description
from edgelite.client.session import ClientSession, TransactionControl

__all__ = ["AsyncConnection", "AsyncCursor", "connect", "drive_async"]

RowFactory = Callable[[Any, tuple[Any, ...]], Any]


async def drive_async(flow: Flow[T], transport: AsyncTransport) -> T:
    """Run a session operation to completion with asyncio I/O."""
    try:
        step = next(flow)
        while True:
            if type(step) is Pipeline:
                try:
                    reply = await transport.exchange(step)
                except WireError as exc:
                    step = flow.throw(exc)
                    continue
                step = flow.send(reply)
            else:
                assert isinstance(step, Sleep), step
                await asyncio.sleep(step.seconds)
                step = flow.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result


class AsyncConnection:
    """An asyncio DB-API connection (see the module docstring)."""

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

    def __init__(self, session: ClientSession, transport: AsyncTransport) -> None:
        self._session = session
        self._transport = transport
        self._lock = asyncio.Lock()
        self.row_factory: RowFactory | None = None
        self.text_factory: Any = str

    def _check(self) -> None:
        if self._session.closed:
            raise ProgrammingError("Cannot operate on a closed database.", code="CLIENT_CLOSED")

    async def _run(self, flow: Flow[T]) -> T:
        async with self._lock:
            self._check()
            return await drive_async(flow, self._transport)

    def cursor(self) -> AsyncCursor:
        self._check()
        return AsyncCursor(self)

    async def commit(self) -> None:
        await self._run(self._session.commit())

    async def rollback(self) -> None:
        await self._run(self._session.rollback())

    async def close(self) -> None:
        """Close; an uncommitted transaction is rolled back."""
        async with self._lock:
            if self._session.closed:
                return
            try:
                await drive_async(self._session.close(), self._transport)
            finally:
                await self._transport.aclose()

    async def execute(self, sql: str, parameters: Any = ()) -> AsyncCursor:
        return await self.cursor().execute(sql, parameters)

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> AsyncCursor:
        return await self.cursor().executemany(sql, seq_of_parameters)

    async def executescript(self, script: str) -> AsyncCursor:
        return await self.cursor().executescript(script)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        """As ``with sqlite3_connection``: commit on success, roll back on an exception."""
        if exc_type is None:
            await self.commit()
        else:
            await self.rollback()

    @property
    def in_transaction(self) -> bool:
        self._check()
        return self._session.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._session.isolation_level

    async def set_isolation_level(self, level: str | None) -> None:
        await self._run(self._session.set_isolation_level(level))

    @property
    def autocommit(self) -> bool | int:
        control = self._session.control
        if control is TransactionControl.LEGACY:
            return -1
        return control is TransactionControl.AUTOCOMMIT

    async def set_autocommit(self, value: bool | int) -> None:
        await self._run(self._session.set_autocommit(value))

    @property
    def replication_index(self) -> int | None:
        return self._session.replication_index

    @property
    def consistency(self) -> str:
        return self._session.consistency

    async def create_function(self, name: str, narg: int, func: Callable[..., Any] | None,
                              *, deterministic: bool = False) -> None:
        create = getattr(self._transport, "create_function", None)
        if create is None:
            raise NotSupportedError("create_function() needs a local database")
        async with self._lock:
            await create(name, narg, func, deterministic=deterministic)


class AsyncCursor:
    """An asyncio cursor: ``await cur.execute(...)``, ``await cur.fetchall()``,
    ``async for row in cur``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._state = CursorState(connection.row_factory)

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

    async def execute(self, sql: str, parameters: Any = ()) -> AsyncCursor:
        self._state.reset()
        connection = self.connection
        outcome = await connection._run(connection._session.execute(sql, parameters))
        self._state.load(outcome, connection.text_factory)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> AsyncCursor:
        self._state.reset()
        connection = self.connection
        outcome = await connection._run(connection._session.executemany(sql,
                                                                         seq_of_parameters))
        self._state.load(outcome)
        return self

    async def executescript(self, script: str) -> AsyncCursor:
        self._state.reset()
        connection = self.connection
        self._state.load(await connection._run(connection._session.executescript(script)))
        return self

    async def fetchone(self) -> Any:
        return self._state.fetchone(self)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._state.fetchmany(self, size)

    async def fetchall(self) -> list[Any]:
        return self._state.fetchall(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        row = self._state.fetchone(self)
        if row is None:
            raise StopAsyncIteration
        return row

    async def close(self) -> None:
        self._state.close()

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._state.close()


class _Connecting:
    """What ``connect()`` returns: await it, or use it as ``async with`` (closes at exit)."""

    def __init__(self, opener: Callable[[], Awaitable[AsyncConnection]]) -> None:
        self._opener = opener
        self._connection: AsyncConnection | None = None

    def __await__(self) -> Generator[Any, None, AsyncConnection]:
        return self._opener().__await__()

    async def __aenter__(self) -> AsyncConnection:
        self._connection = await self._opener()
        return self._connection

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        assert self._connection is not None
        await self._connection.close()


def connect(database: Any, timeout: float = 5.0, **kwargs: Any) -> _Connecting:
    """``edgelite.connect``'s arguments; returns an awaitable / async context manager."""
    from edgelite.client.opening import open_async

    return _Connecting(lambda: open_async(database, timeout, **kwargs))
