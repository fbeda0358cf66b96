"""Hrana requests as storage programs.

The server decodes a request and hands its messages here; this module turns them
into a *program* (see ``storage.session``) that runs on a storage thread against a
``SqlContext`` and returns Hrana result messages. Programs may be run more than once,
so they only read their inputs and return everything they produce (including the
updated stored-SQL map); the caller commits that state once the job has completed.

Errors: a statement's failure becomes an error *result* (Hrana semantics); a
``ProtocolError`` or an ``AuthError`` aborts the whole request (HTTP 400 / 403), as sqld
does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from edgelite.errors import AuthError, EdgeliteError, ProtocolError, SqlError
from edgelite.protocol import hrana
from edgelite.protocol.hrana import messages as m
from edgelite.protocol.hrana.legacy import (
    LegacyError,
    LegacyQuery,
    LegacyRequest,
    LegacyResponseItem,
    LegacyResult,
    LegacyResultSet,
)
from edgelite.protocol.hrana.sql_store import SqlStore
from edgelite.storage.context import SqlContext
from edgelite.storage.executor import StatementResult

# Exceptions that fail the whole request rather than one statement.
REQUEST_FATAL = (ProtocolError, AuthError)


@dataclasses.dataclass(frozen=True, slots=True)
class PipelineRun:
    results: list[m.StreamResult]
    stored_sql: SqlStore
    closed: bool


def copy_store(store: SqlStore) -> SqlStore:
    """An independent copy (programs must not change their inputs; see module doc)."""
    copy = SqlStore(count_max=store.count_max, text_bytes_max=store.text_bytes_max,
                    total_bytes_max=store.total_bytes_max)
    for sql_id in store:
        copy.store(sql_id, store.get(sql_id))
    return copy


def stmt_result(result: StatementResult) -> m.StmtResult:
    _check_representable(result.rows)
    return m.StmtResult(
        cols=[m.Col(column.name, column.decltype) for column in result.columns],
        rows=result.rows,
        affected_row_count=result.affected_row_count,
        last_insert_rowid=result.last_insert_rowid,
        rows_read=result.rows_read,
        rows_written=result.rows_written,
        query_duration_ms=round(result.duration_ms, 3),
    )


def _check_representable(rows: list[tuple[Any, ...]]) -> None:
    """JSON has no infinity or NaN: refuse this statement, not the whole response."""
    for row in rows:
        for value in row:
            if type(value) is float and not math.isfinite(value):
                raise SqlError(f"SQLite error: the result holds the float {value}, which "
                               "Hrana's JSON encoding cannot carry", code="SQLITE_MISMATCH")


def execute_stmt(ctx: SqlContext, stmt: m.Stmt, stored: SqlStore) -> m.StmtResult:
    sql = stored.resolve(stmt.sql, stmt.sql_id)
    named = {arg.name: arg.value for arg in stmt.named_args}
    result = ctx.execute(sql, stmt.args, named, want_rows=bool(stmt.want_rows))
    return stmt_result(result)


def run_batch(ctx: SqlContext, batch: m.Batch, stored: SqlStore) -> m.BatchResult:
    outcomes: list[bool | None] = []
    results: list[m.StmtResult | None] = []
    errors: list[m.Error | None] = []
    for step in batch.steps:
        if step.condition is not None and not hrana.eval_condition(
                step.condition, outcomes, lambda: ctx.is_autocommit):
            outcomes.append(None)
            results.append(None)
            errors.append(None)
            continue
        try:
            results.append(execute_stmt(ctx, step.stmt, stored))
        except REQUEST_FATAL:
            raise
        except EdgeliteError as exc:
            outcomes.append(False)
            results.append(None)
            errors.append(hrana.error_to_hrana(exc))
            continue
        outcomes.append(True)
        errors.append(None)
    return m.BatchResult(step_results=results, step_errors=errors)


def describe(ctx: SqlContext, sql: str) -> m.DescribeResult:
    description = ctx.describe(sql)
    return m.DescribeResult(
        params=[m.DescribeParam(name) for name in description.parameter_names],
        cols=[m.DescribeCol(c.name, c.decltype) for c in description.columns],
        is_explain=description.is_explain,
        is_readonly=description.is_readonly,
    )


class Pipeline:
    """A program running the requests of one Hrana-over-HTTP pipeline in order."""

    def __init__(self, requests: Sequence[m.StreamRequest], stored_sql: SqlStore) -> None:
        _check_close_is_last(requests)
        self.requests = requests
        self.stored_sql = stored_sql

    def __call__(self, ctx: SqlContext) -> PipelineRun:
        stored = copy_store(self.stored_sql)
        results: list[m.StreamResult] = []
        closed = False
        for request in self.requests:
            try:
                response, closed = self._one(ctx, request, stored)
                results.append(m.StreamResultOk(response))
            except REQUEST_FATAL:
                raise
            except EdgeliteError as exc:
                results.append(m.StreamResultError(hrana.error_to_hrana(exc)))
        return PipelineRun(results, stored, closed)

    def _one(self, ctx: SqlContext, request: m.StreamRequest,
             stored: SqlStore) -> tuple[m.StreamResponse, bool]:
        if isinstance(request, m.ExecuteRequest):
            return m.ExecuteResponse(execute_stmt(ctx, request.stmt, stored)), False
        if isinstance(request, m.BatchRequest):
            return m.BatchResponse(run_batch(ctx, request.batch, stored)), False
        if isinstance(request, m.SequenceRequest):
            ctx.execute_script(stored.resolve(request.sql, request.sql_id))
            return m.SequenceResponse(), False
        if isinstance(request, m.DescribeRequest):
            sql = stored.resolve(request.sql, request.sql_id)
            return m.DescribeResponse(describe(ctx, sql)), False
        if isinstance(request, m.StoreSqlRequest):
            stored.store(request.sql_id, request.sql)
            return m.StoreSqlResponse(), False
        if isinstance(request, m.CloseSqlRequest):
            stored.close(request.sql_id)
            return m.CloseSqlResponse(), False
        if isinstance(request, m.GetAutocommitRequest):
            return m.GetAutocommitResponse(ctx.is_autocommit), False
        assert isinstance(request, m.CloseRequest), request
        roll_back_if_open(ctx)
        return m.CloseResponse(), True


def roll_back_if_open(ctx: SqlContext) -> None:
    if not ctx.is_autocommit:
        ctx.execute("ROLLBACK", want_rows=False)


def _check_close_is_last(requests: Sequence[m.StreamRequest]) -> None:
    for index, request in enumerate(requests[:-1]):
        if isinstance(request, m.CloseRequest):
            raise ProtocolError(f"Stream for this baton was closed: request {index} closes "
                                "the stream but more requests follow it")


class CursorProgram:
    """``/v3/cursor`` and WebSocket cursors: a batch whose results are entries."""

    def __init__(self, batch: m.Batch, stored_sql: SqlStore) -> None:
        self.batch = batch
        self.stored_sql = stored_sql

    def __call__(self, ctx: SqlContext) -> list[m.CursorEntry]:
        entries: list[m.CursorEntry] = []
        outcomes: list[bool | None] = []
        for index, step in enumerate(self.batch.steps):
            if step.condition is not None and not hrana.eval_condition(
                    step.condition, outcomes, lambda: ctx.is_autocommit):
                outcomes.append(None)
                continue
            try:
                result = execute_stmt(ctx, step.stmt, self.stored_sql)
            except REQUEST_FATAL:
                raise
            except EdgeliteError as exc:
                outcomes.append(False)
                entries.append(m.StepErrorEntry(index, hrana.error_to_hrana(exc)))
                continue
            outcomes.append(True)
            entries.append(m.StepBeginEntry(index, result.cols))
            entries.extend(m.RowEntry(row) for row in result.rows)
            entries.append(m.StepEndEntry(result.affected_row_count, result.last_insert_rowid))
        return entries


def with_replication_index(message: Any, index: int | None) -> Any:
    """Fill ``replication_index`` into results once the job's commit index is known."""
    if index is None:
        return message
    if isinstance(message, m.StmtResult):
        return msgspec.structs.replace(message, replication_index=index)
    if isinstance(message, m.BatchResult):
        steps = [None if r is None else msgspec.structs.replace(r, replication_index=index)
                 for r in message.step_results]
        return msgspec.structs.replace(message, step_results=steps, replication_index=index)
    if isinstance(message, m.ExecuteResponse | m.BatchResponse):
        return msgspec.structs.replace(message,
                                       result=with_replication_index(message.result, index))
    if isinstance(message, m.StreamResultOk):
        return m.StreamResultOk(with_replication_index(message.response, index))
    return message


def sql_texts(requests: Sequence[m.StreamRequest], stored: SqlStore) -> list[str]:
    """The statement texts a pipeline will run (for routing hints; ``""`` = unknown)."""
    texts: list[str] = []
    for request in requests:
        if isinstance(request, m.ExecuteRequest):
            texts.append(_text_of(request.stmt, stored))
        elif isinstance(request, m.BatchRequest):
            texts.extend(_text_of(step.stmt, stored) for step in request.batch.steps)
        elif isinstance(request, m.SequenceRequest):
            texts.append("")  # a script: unknown until it runs
    return texts


def _text_of(stmt: m.Stmt, stored: SqlStore) -> str:
    if stmt.sql is not None:
        return stmt.sql
    return stored.get(stmt.sql_id) if stmt.sql_id in stored else ""


class LegacyProgram:
    """The legacy ``POST /`` API: statements in order, each autocommitting, stopping at
    the first error (its slot holds the error, later slots are null)."""

    def __init__(self, request: LegacyRequest) -> None:
        self.request = request

    def __call__(self, ctx: SqlContext) -> list[LegacyResponseItem]:
        items: list[LegacyResponseItem] = []
        for index, statement in enumerate(self.request.statements):
            if items and isinstance(items[-1], LegacyError | None):
                items.append(None)
                continue
            sql, args, named = _legacy_statement(statement)
            try:
                result = ctx.execute(sql, args, named)
            except REQUEST_FATAL:
                raise
            except SqlError as exc:
                if exc.code == "SQL_MANY_STATEMENTS":
                    raise ProtocolError(
                        f"found more than one command in a single statement string "
                        f"(statement {index}); send them as separate statements") from exc
                items.append(LegacyError(error=exc.message))
                continue
            except EdgeliteError as exc:
                items.append(LegacyError(error=exc.message))
                continue
            items.append(LegacyResult(LegacyResultSet(
                columns=[c.name for c in result.columns], rows=result.rows,
                rows_read=result.rows_read, rows_written=result.rows_written,
                query_duration_ms=round(result.duration_ms, 3))))
        if not ctx.is_autocommit:
            roll_back_if_open(ctx)
            raise ProtocolError("interactive transaction not allowed in HTTP queries")
        return items


def _legacy_statement(statement: str | LegacyQuery) -> tuple[str, Sequence[Any],
                                                             dict[str, Any]]:
    if isinstance(statement, str):
        return statement, (), {}
    params = statement.params
    if params is None:
        return statement.q, (), {}
    if isinstance(params, Mapping):
        return statement.q, (), dict(params)
    return statement.q, list(params), {}
