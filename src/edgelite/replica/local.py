"""Local databases (a file, a ``file:`` URI, ``:memory:``) for ``edgelite.connect``.

``LocalDatabase`` is a transport that runs the client session's Hrana stream requests
on one APSW connection, in process, the way an edgelite server runs them on a stream:
same statement results (``affected_row_count`` for DML only, ``last_insert_rowid`` for
INSERT/REPLACE only), same error codes (``storage.sqlite_errors``), same "one statement
per execute" rule. So a local connection has exactly the API and the errors of a remote
one, with none of a server's restrictions (it is the user's own file).

There is one SQLite connection, so there is one "stream": closing it rolls back an open
transaction but keeps the connection (and TEMP tables, PRAGMAs) for the next call.
``AsyncLocalDatabase`` runs the same object on one worker thread per connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Any, Final

import apsw

from edgelite.client import sql as sqlinfo
from edgelite.client.errors import OperationalError, plain_message
from edgelite.client.exchange import Pipeline, Reply
from edgelite.client.target import LocalTarget
from edgelite.errors import SqlError
from edgelite.protocol import hrana
from edgelite.protocol.hrana import messages as m
from edgelite.storage.sqlite_errors import Phase, sql_error_from_apsw

__all__ = ["AsyncLocalDatabase", "LocalBackend", "LocalDatabase"]

_STREAM: Final = "local"  # the one stream token of a local database
_NAME_PREFIXES: Final = ":@$"
_ROWID_KEYWORDS: Final = frozenset({"INSERT", "REPLACE"})


class _ManyStatements(Exception):
    """The text holds a second statement; raised before the first one runs."""


class LocalDatabase:
    """A sync transport over one APSW connection (see the module docstring)."""

    def __init__(self, target: LocalTarget, *, busy_timeout_s: float) -> None:
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        if target.uri:
            flags |= apsw.SQLITE_OPEN_URI
        try:
            connection = apsw.Connection(target.path, flags=flags)
        except apsw.Error as exc:
            raise sql_error_from_apsw(exc, phase="step") from exc
        connection.set_busy_timeout(int(busy_timeout_s * 1000))
        self._attach(connection)

    @classmethod
    def over(cls, connection: apsw.Connection) -> LocalDatabase:
        """Serve an already opened (and configured) connection; it is closed with us."""
        database = cls.__new__(cls)
        database._attach(connection)
        return database

    def _attach(self, connection: apsw.Connection) -> None:
        self._db = connection
        self._stored: dict[int, str] = {}
        self._cursor = self._db.cursor()
        self._cursor.exec_trace = self._trace
        self._text = ""
        self._columns: list[m.Col] = []
        self._traced = False

    # --- transport -------------------------------------------------------------------------

    def exchange(self, pipeline: Pipeline) -> Reply:
        results = [self._run(request) for request in pipeline.requests]
        closes = bool(pipeline.requests) and type(pipeline.requests[-1]) is m.CloseRequest
        return Reply(results, None if closes else _STREAM, None)

    def close(self) -> None:
        self._db.close()

    def create_function(self, name: str, narg: int, func: Callable[..., Any] | None, *,
                        deterministic: bool = False) -> None:
        self._db.create_scalar_function(name, func, numargs=narg,
                                        deterministic=deterministic)

    # --- requests --------------------------------------------------------------------------

    def _run(self, request: m.StreamRequest) -> m.StreamResult:
        try:
            return m.StreamResultOk(self._dispatch(request))
        except SqlError as exc:
            return m.StreamResultError(hrana.error_to_hrana(exc))

    def _dispatch(self, request: m.StreamRequest) -> m.StreamResponse:
        kind = type(request)
        if kind is m.ExecuteRequest:
            return m.ExecuteResponse(self._statement(request.stmt))  # type: ignore[union-attr]
        if kind is m.BatchRequest:
            return m.BatchResponse(self._batch(request.batch))  # type: ignore[union-attr]
        if kind is m.GetAutocommitRequest:
            return m.GetAutocommitResponse(self._is_autocommit())
        if kind is m.CloseRequest:
            self._close_stream()
            return m.CloseResponse()
        if isinstance(request, m.SequenceRequest):
            self._run_script(self._text_of(request.sql, request.sql_id))
            return m.SequenceResponse()
        if isinstance(request, m.StoreSqlRequest):
            self._stored[request.sql_id] = request.sql
            return m.StoreSqlResponse()
        if isinstance(request, m.CloseSqlRequest):
            self._stored.pop(request.sql_id, None)
            return m.CloseSqlResponse()
        raise SqlError(f"local databases do not serve {kind.__name__}", code="PROTOCOL_ERROR")

    def _batch(self, batch: m.Batch) -> m.BatchResult:
        outcomes: list[bool | None] = []
        results: list[m.StmtResult | None] = []
        errors: list[m.Error | None] = []
        for step in batch.steps:
            if step.condition is not None and not hrana.eval_condition(
                    step.condition, outcomes, is_autocommit=self._is_autocommit):
                outcomes.append(None)
                results.append(None)
                errors.append(None)
                continue
            try:
                results.append(self._statement(step.stmt))
                errors.append(None)
                outcomes.append(True)
            except SqlError as exc:
                results.append(None)
                errors.append(hrana.error_to_hrana(exc))
                outcomes.append(False)
        return m.BatchResult(results, errors)

    # --- hooks (replica transports refine these) ----------------------------------------

    def _is_autocommit(self) -> bool:
        """No transaction open (what ``get_autocommit`` answers)."""
        return bool(self._db.get_autocommit())

    def _close_stream(self) -> None:
        """The one stream closes: roll back what it left open (the connection stays)."""
        if not self._db.get_autocommit():
            self._db.execute("ROLLBACK")

    def _execute(self, text: str, bindings: Any) -> tuple[list[Any], int, int]:
        """Run one statement: ``(rows, changes, last_insert_rowid)``; apsw errors pass."""
        db = self._db
        rows = self._cursor.execute(text, bindings).fetchall()
        return rows, db.changes(), db.last_insert_rowid()

    def _sql_error(self, exc: apsw.Error, phase: Phase) -> SqlError:
        return sql_error_from_apsw(exc, phase=phase)

    def _run_script(self, script: str) -> None:
        cursor = self._db.cursor()
        try:
            for _ in cursor.execute(script):
                pass
        except apsw.Error as exc:
            raise self._sql_error(exc, "step") from exc
        finally:
            cursor.close()

    # --- one statement ----------------------------------------------------------------------

    def _trace(self, cursor: apsw.Cursor, first_sql: str, _bindings: object) -> bool:
        """Runs before each statement of the text: refuse a second one, keep columns."""
        if self._traced:
            return True
        self._traced = True
        rest = self._text[len(first_sql):] if self._text.startswith(first_sql) else ""
        if rest and not sqlinfo.is_blank(rest):
            raise _ManyStatements()
        self._columns = [m.Col(str(name), decltype)
                         for name, decltype in cursor.get_description()]
        return True

    def _statement(self, stmt: m.Stmt) -> m.StmtResult:
        text = self._text_of(stmt.sql, stmt.sql_id)
        bindings = _bindings(stmt.args, stmt.named_args)
        self._text, self._columns, self._traced = text, [], False
        try:
            rows, changes, last_rowid = self._execute(text, bindings)
        except _ManyStatements:
            self._reset_cursor()
            raise SqlError("SQL string contains more than one statement",
                           code="SQL_MANY_STATEMENTS") from None
        except apsw.BindingsError as exc:
            raise SqlError(f"Arguments do not match SQL parameters: {exc}",
                           code="ARGS_INVALID") from exc
        except KeyError as exc:
            raise SqlError(f"Arguments do not match SQL parameters: value for parameter "
                           f"{exc.args[0]} not found", code="ARGS_INVALID") from exc
        except apsw.Error as exc:
            raise self._sql_error(exc, "step" if self._traced else "prepare") from exc
        keyword = sqlinfo.leading_keyword(text)
        is_dml = sqlinfo.classify(text) is sqlinfo.Lead.DML
        return m.StmtResult(
            cols=self._columns,
            rows=rows if stmt.want_rows else [],
            affected_row_count=changes if is_dml else 0,
            last_insert_rowid=last_rowid if keyword in _ROWID_KEYWORDS else None,
        )

    def _text_of(self, sql: str | None, sql_id: int | None) -> str:
        if sql is not None:
            return sql
        assert sql_id is not None, "messages carry sql or sql_id"
        stored = self._stored.get(sql_id)
        if stored is None:
            raise SqlError(f"SQL text {sql_id} was not stored", code="PROTOCOL_ERROR")
        return stored

    def _reset_cursor(self) -> None:
        self._cursor.close(force=True)
        self._cursor = self._db.cursor()
        self._cursor.exec_trace = self._trace


def _bindings(args: Sequence[Any], named: Sequence[m.NamedArg]) -> Any:
    if not named:
        return tuple(args)
    if args:
        raise SqlError("Arguments do not match SQL parameters: both positional and named "
                       "arguments were given", code="ARGS_BOTH_POSITIONAL_AND_NAMED")
    return {arg.name.lstrip(_NAME_PREFIXES): arg.value for arg in named}


class AsyncLocalDatabase:
    """``LocalDatabase`` for asyncio: every call runs on this connection's own thread."""

    def __init__(self, executor: concurrent.futures.ThreadPoolExecutor,
                 database: LocalDatabase) -> None:
        self._executor = executor
        self._database = database

    @classmethod
    async def open(cls, target: LocalTarget, *, busy_timeout_s: float) -> AsyncLocalDatabase:
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="edgelite-local")
        loop = asyncio.get_running_loop()
        try:
            database = await loop.run_in_executor(
                executor, lambda: LocalDatabase(target, busy_timeout_s=busy_timeout_s))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, database)

    async def exchange(self, pipeline: Pipeline) -> Reply:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._database.exchange, pipeline)

    async def create_function(self, name: str, narg: int, func: Callable[..., Any] | None,
                              *, deterministic: bool = False) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, lambda: self._database.create_function(
            name, narg, func, deterministic=deterministic))

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._database.close)
        finally:
            self._executor.shutdown(wait=False)


class LocalBackend:
    """Registered with ``edgelite.client`` by ``edgelite.replica`` on import. A file that
    cannot be opened raises ``OperationalError`` (as sqlite3)."""

    def open_sync(self, target: LocalTarget, *, busy_timeout_s: float) -> LocalDatabase:
        try:
            return LocalDatabase(target, busy_timeout_s=busy_timeout_s)
        except SqlError as exc:
            raise _open_error(exc, target) from exc

    async def open_async(self, target: LocalTarget, *,
                         busy_timeout_s: float) -> AsyncLocalDatabase:
        try:
            return await AsyncLocalDatabase.open(target, busy_timeout_s=busy_timeout_s)
        except SqlError as exc:
            raise _open_error(exc, target) from exc


def _open_error(exc: SqlError, target: LocalTarget) -> OperationalError:
    message = f"{plain_message(exc.message)}: {target.path!r}"
    return OperationalError(message, code=hrana.hrana_code_of(exc))
