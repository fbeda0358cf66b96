"""The sans-IO client session: DB-API semantics on top of Hrana streams.

One ``ClientSession`` per connection decides everything: which stream requests a call
becomes, when a stream (and so a transaction) must stay open, what the results mean,
which PEP 249 error to raise, what may be retried. It does no I/O: every operation is a
generator (``exchange.Flow``) that yields ``Pipeline``s and ``Sleep``s; the sync and
async shells run it against a transport (HTTP, WebSocket, or a local APSW file).

Transactions (as in ``sqlite3``):

- ``LEGACY`` (``autocommit=LEGACY_TRANSACTION_CONTROL``, the default): before an
  ``INSERT``/``UPDATE``/``DELETE``/``REPLACE`` outside a transaction, ``BEGIN
  <isolation_level>`` is sent in the same batch (unless ``isolation_level`` is None).
- ``AUTOCOMMIT`` (``autocommit=True``): statements run as given; commit/rollback no-ops.
- ``MANUAL`` (``autocommit=False``): a transaction is always open; its ``BEGIN`` is sent
  lazily with the first statement after connect/commit/rollback.

Streams: over HTTP (``keep_idle_stream=False``) a stream costs the server a connection
and expires when idle, so outside a transaction every stream is closed by the pipeline
that used it (``close`` is its last request) and no idle stream can expire under a
connection that holds no transaction; ``COMMIT``/``ROLLBACK`` pipelines end with
``close`` too. Over WebSocket and for local files (``keep_idle_stream=True``) streams
do not expire, so one stream is kept for the connection's life (TEMP tables and PRAGMAs
persist, as with sqlite3). When a statement may start or end a transaction, the pipeline
ends with ``get_autocommit`` and the server's answer is the truth.

Invariant (checked by ``_check``): a transaction is only ever open on a kept stream
(``in_transaction`` implies ``stream is not None``), and without ``keep_idle_stream``
no stream is kept outside a transaction.

Retries: only a pipeline the server cannot have seen (``WireError.retryable``, e.g.
connection refused) is sent again, on a new stream, and only outside a transaction
(nothing to lose). Anything that may have run is never re-sent; the error says the
outcome is unknown.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
from collections.abc import Iterable, Sequence
from typing import Final

from edgelite.client import sql as sqlinfo
from edgelite.client.errors import Error, InterfaceError, ProgrammingError, error_from_hrana
from edgelite.client.exchange import Executed, Flow, Pipeline, Reply, Sleep, WireError
from edgelite.client.outcome import EMPTY, Outcome, describe
from edgelite.client.params import bind
from edgelite.protocol.hrana import (
    Batch,
    BatchRequest,
    BatchResponse,
    BatchResult,
    BatchStep,
    CloseRequest,
    CloseSqlRequest,
    CondOk,
    ExecuteRequest,
    ExecuteResponse,
    GetAutocommitRequest,
    GetAutocommitResponse,
    SequenceRequest,
    Stmt,
    StmtResult,
    StoreSqlRequest,
    StreamRequest,
    StreamResult,
    StreamResultOk,
)
from edgelite.protocol.hrana import Error as HranaError

__all__ = [
    "BATCH_STEPS_MAX",
    "LEGACY_TRANSACTION_CONTROL",
    "RETRY_DELAYS_S",
    "ClientSession",
    "TransactionControl",
]

LEGACY_TRANSACTION_CONTROL: Final = -1
# Steps per batch request: edgelite's default statements_max (sqld has no such bound).
BATCH_STEPS_MAX: Final = 1000
# Back-off before re-sending a pipeline the server never saw (connection refused).
RETRY_DELAYS_S: Final = (0.05, 0.25, 1.0)
# Stored texts at most this long are sent once per executemany batch (sqld: 5000 B).
STORED_SQL_BYTES_MAX: Final = 4000
_ISOLATION_LEVELS: Final = frozenset({"", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"})
_STREAM_GONE_CODES: Final = frozenset({"STREAM_EXPIRED", "BATON_INVALID", "STREAM_LOST"})
Lead = sqlinfo.Lead


class TransactionControl(enum.Enum):
    LEGACY = "legacy"
    AUTOCOMMIT = "autocommit"
    MANUAL = "manual"

    @staticmethod
    def from_autocommit(value: object) -> TransactionControl:
        if value is True:
            return TransactionControl.AUTOCOMMIT
        if value is False:
            return TransactionControl.MANUAL
        if value == LEGACY_TRANSACTION_CONTROL and type(value) is int:
            return TransactionControl.LEGACY
        raise ValueError(
            "autocommit must be True, False, or sqlite3.LEGACY_TRANSACTION_CONTROL"
        )


def check_isolation_level(level: object) -> str | None:
    if level is None:
        return None
    if not isinstance(level, str) or level.upper() not in _ISOLATION_LEVELS:
        raise ValueError(
            "isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or 'EXCLUSIVE'"
        )
    return level.upper()


def _stmt(sql: str) -> Stmt:
    return Stmt(sql=sql, want_rows=False)


class ClientSession:
    """DB-API state of one connection; see the module docstring for the contract."""

    def __init__(
        self,
        *,
        consistency: str = "session",
        autocommit: object = LEGACY_TRANSACTION_CONTROL,
        isolation_level: str | None = "",
        autocommit_probe: bool = True,
        keep_idle_stream: bool = False,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
        batch_steps_max: int = BATCH_STEPS_MAX,
    ) -> None:
        assert batch_steps_max >= 2
        self.consistency = consistency
        self.control = TransactionControl.from_autocommit(autocommit)
        self.isolation_level = check_isolation_level(isolation_level)
        # Hrana 3 has get_autocommit; without it the state is inferred from SQL.
        self.autocommit_probe = autocommit_probe
        self.keep_idle_stream = keep_idle_stream
        self.retry_delays_s = tuple(retry_delays_s)
        self.batch_steps_max = batch_steps_max
        self.replication_index: int | None = None
        self.last_insert_rowid = 0
        self.closed = False
        self._stream: object | None = None
        self._in_txn = False
        self._sql_ids = itertools.count()

    # --- state ---------------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        """As sqlite3: True inside BEGIN...COMMIT (and always with ``autocommit=False``)."""
        return self._in_txn or (self.control is TransactionControl.MANUAL and not self.closed)

    @property
    def has_stream(self) -> bool:
        return self._stream is not None

    def _check(self, *, settled: bool = False) -> None:
        """The invariants; ``settled``: at the end of an operation (after ``_tidy``)."""
        assert self._stream is not None or not self._in_txn, "transaction without a stream"
        if settled:
            assert self.keep_idle_stream or self._in_txn or self._stream is None, "idle stream"

    def observe_index(self, index: int | None) -> None:
        if index is not None and (self.replication_index is None
                                  or index > self.replication_index):
            self.replication_index = index

    def _observe_results(self, results: Sequence[StreamResult]) -> None:
        for result in results:
            if type(result) is not StreamResultOk:
                continue
            response = result.response
            if type(response) is ExecuteResponse:
                self.observe_index(response.result.replication_index)
            elif type(response) is BatchResponse:
                self.observe_index(response.result.replication_index)
                for step in response.result.step_results:
                    if step is not None:
                        self.observe_index(step.replication_index)

    # --- sending -------------------------------------------------------------------------

    def _pipeline(self, requests: Sequence[StreamRequest]) -> Pipeline:
        bookmark = self.replication_index if self.consistency == "session" else None
        return Pipeline(tuple(requests), self._stream, self.consistency, bookmark)

    def _send(self, requests: Sequence[StreamRequest]) -> Flow[Reply]:
        """One round trip; retries only what the server cannot have seen."""
        for attempt in itertools.count():
            try:
                reply: Reply = yield self._pipeline(requests)
            except WireError as exc:
                if (exc.retryable and not self._in_txn
                        and attempt < len(self.retry_delays_s)):
                    self._stream = None  # gone with the failure; nothing was lost with it
                    yield Sleep(self.retry_delays_s[attempt])
                    continue
                raise self._lost(exc) from exc
            break
        if len(reply.results) != len(requests):
            self._stream, self._in_txn = None, False
            raise InterfaceError(
                f"the server answered {len(reply.results)} results to {len(requests)} "
                "requests; the stream was abandoned", code="PROTOCOL_ERROR")
        self._stream = reply.stream
        if self._stream is None:
            self._in_txn = False
        self.observe_index(reply.replication_index)
        self._observe_results(reply.results)
        return reply

    def _lost(self, exc: WireError) -> Error:
        """The stream is gone with whatever transaction it held; say so."""
        message = exc.message
        if self._in_txn:
            message += "; the open transaction was lost (rolled back by the server)"
        elif exc.executed is Executed.MAYBE:
            message += "; the statement may or may not have been applied"
        self._stream, self._in_txn = None, False
        return error_from_hrana(exc.code, message)

    def _tidy(self) -> Flow[None]:
        """Close a stream left open outside a transaction (rare: a failed BEGIN, a script),
        unless idle streams are kept."""
        if self._stream is not None and not self._in_txn and not self.keep_idle_stream:
            # A failure leaves the stream unusable either way; the server expires it.
            with contextlib.suppress(Error):
                yield from self._send([CloseRequest()])
            self._stream = None
        self._check(settled=True)

    # --- transaction policy --------------------------------------------------------------

    def _begin_sql(self, lead: sqlinfo.Lead) -> str | None:
        if self._in_txn:
            return None
        if self.control is TransactionControl.LEGACY:
            if self.isolation_level is None or lead is not Lead.DML:
                return None
            return f"BEGIN {self.isolation_level}".rstrip()
        if self.control is TransactionControl.MANUAL and lead not in (
                Lead.BEGIN, Lead.COMMIT, Lead.ROLLBACK):
            return "BEGIN"
        return None

    def _tail(self, lead: sqlinfo.Lead, *, opens: bool) -> StreamRequest | None:
        """What ends a statement's pipeline: a ``get_autocommit`` probe when the statement
        may change the transaction state, ``close`` when an idle stream must not be kept,
        else nothing."""
        probe = GetAutocommitRequest() if self.autocommit_probe else None
        if lead in (Lead.COMMIT, Lead.ROLLBACK):
            return probe if self.keep_idle_stream else CloseRequest()
        if self._in_txn or opens or lead in (Lead.BEGIN, Lead.SAVEPOINT, Lead.RELEASE):
            return probe
        return None if self.keep_idle_stream else CloseRequest()

    def _settle(self, reply: Reply, tail: StreamRequest | None, *, began: bool,
                opened: bool, ended: bool = False) -> None:
        """Update the transaction state from the tail's answer (or infer it)."""
        if reply.stream is None:
            self._in_txn = False
        elif type(tail) is GetAutocommitRequest:
            last = reply.results[-1]
            if type(last) is StreamResultOk and type(last.response) is GetAutocommitResponse:
                self._in_txn = not last.response.is_autocommit
        elif not self.autocommit_probe:  # Hrana 2: infer from what succeeded
            if began or opened:
                self._in_txn = True
            elif ended:
                self._in_txn = False
        self._check()

    # --- operations ----------------------------------------------------------------------

    def execute(self, sql: str, parameters: object = ()) -> Flow[Outcome]:
        """``cursor.execute``: one round trip, BEGIN folded in when needed."""
        if not isinstance(sql, str):
            raise ProgrammingError(f"SQL must be a str, not {type(sql).__name__}")
        args, named = bind(parameters)
        if sqlinfo.is_blank(sql):
            return EMPTY
        lead = sqlinfo.classify(sql)
        stmt = Stmt(sql=sql, args=args, named_args=named)
        begin = self._begin_sql(lead)
        request: StreamRequest
        if begin is None:
            request = ExecuteRequest(stmt)
        else:
            request = BatchRequest(Batch([BatchStep(_stmt(begin)),
                                          BatchStep(stmt, CondOk(0))]))
        tail = self._tail(lead, opens=begin is not None)
        requests = [request] if tail is None else [request, tail]
        reply = yield from self._send(requests)
        error, result = _main_result(reply.results[0])
        self._settle(reply, tail, began=begin is not None and error is None,
                     opened=lead in (Lead.BEGIN, Lead.SAVEPOINT) and error is None,
                     ended=lead in (Lead.COMMIT, Lead.ROLLBACK) and error is None)
        yield from self._tidy()
        if error is not None:
            if error.code == "SQL_NO_STATEMENT":
                return EMPTY
            raise error_from_hrana(error.code, error.message)
        assert result is not None
        return self._outcome(result, lead)

    def _outcome(self, result: StmtResult, lead: sqlinfo.Lead) -> Outcome:
        if result.last_insert_rowid is not None:
            self.last_insert_rowid = result.last_insert_rowid
        return Outcome(
            description=describe(result.cols),
            rows=[tuple(row) for row in result.rows],
            rowcount=result.affected_row_count if lead is Lead.DML else -1,
            lastrowid=self.last_insert_rowid,
        )

    def executemany(self, sql: str, seq_of_parameters: Iterable[object]) -> Flow[Outcome]:
        """``cursor.executemany``: one batch request per ``batch_steps_max`` rows."""
        if not isinstance(sql, str):
            raise ProgrammingError(f"SQL must be a str, not {type(sql).__name__}")
        if sqlinfo.is_read_only(sql):
            raise ProgrammingError("executemany() can only execute DML statements.")
        lead = sqlinfo.classify(sql)
        rows = iter(seq_of_parameters)
        total = 0
        while chunk := list(itertools.islice(rows, self.batch_steps_max - 1)):
            total += yield from self._execute_chunk(sql, lead, chunk)
        return Outcome(None, [], total if lead is Lead.DML else -1, None)

    def _execute_chunk(self, sql: str, lead: sqlinfo.Lead, chunk: list[object]) -> Flow[int]:
        bound = [bind(parameters) for parameters in chunk]
        begin = self._begin_sql(lead)
        steps = [] if begin is None else [BatchStep(_stmt(begin))]
        first = len(steps)
        stored = len(bound) > 1 and len(sql.encode("utf-8")) <= STORED_SQL_BYTES_MAX
        sql_id = next(self._sql_ids) % (2**31) if stored else None
        for args, named in bound:
            stmt = (Stmt(sql_id=sql_id, args=args, named_args=named, want_rows=False)
                    if stored else Stmt(sql=sql, args=args, named_args=named, want_rows=False))
            steps.append(BatchStep(stmt, CondOk(len(steps) - 1) if steps else None))
        requests: list[StreamRequest] = [BatchRequest(Batch(steps))]
        if sql_id is not None:
            requests = [StoreSqlRequest(sql_id, sql), *requests, CloseSqlRequest(sql_id)]
        tail = self._tail(lead, opens=begin is not None)
        if tail is not None:
            requests.append(tail)
        reply = yield from self._send(requests)
        batch_index = 1 if sql_id is not None else 0
        error, batch = _batch_result(reply.results[batch_index])
        began = batch is not None and begin is not None and batch.step_errors[0] is None
        self._settle(reply, tail, began=began, opened=False)
        yield from self._tidy()
        if error is None and batch is not None:
            error = next((e for e in batch.step_errors if e is not None), None)
        if error is not None:
            raise error_from_hrana(error.code, error.message)
        assert batch is not None
        changed = 0
        for step in batch.step_results[first:]:
            assert step is not None, "a step was skipped although none failed"
            changed += step.affected_row_count
            if step.last_insert_rowid is not None:
                self.last_insert_rowid = step.last_insert_rowid
        return changed

    def executescript(self, script: str) -> Flow[Outcome]:
        """``cursor.executescript``: one ``sequence`` request (after a pending COMMIT)."""
        if not isinstance(script, str):
            raise ProgrammingError("script argument must be a str")
        if self.control is TransactionControl.LEGACY and self._in_txn:
            yield from self.commit()
        if sqlinfo.is_blank(script):
            return EMPTY
        opens = sqlinfo.script_may_open_transaction(script)
        tail = self._tail(Lead.OTHER, opens=opens)
        requests: list[StreamRequest] = [SequenceRequest(sql=script)]
        if tail is not None:
            requests.append(tail)
        reply = yield from self._send(requests)
        first = reply.results[0]
        error = None if type(first) is StreamResultOk else first.error  # type: ignore[union-attr]
        self._settle(reply, tail, began=False, opened=opens and error is None)
        yield from self._tidy()
        if error is not None:
            raise error_from_hrana(error.code, error.message)
        return EMPTY

    def commit(self) -> Flow[None]:
        """COMMIT the open transaction, if any, and close its stream."""
        if self.control is TransactionControl.AUTOCOMMIT or not self._in_txn:
            yield from self._tidy()
            return
        yield from self._finish_transaction("COMMIT")

    def rollback(self) -> Flow[None]:
        """ROLLBACK the open transaction, if any. A stream that already expired is fine:
        the server rolled the transaction back when it dropped the stream."""
        if self.control is TransactionControl.AUTOCOMMIT or not self._in_txn:
            yield from self._tidy()
            return
        try:
            yield from self._finish_transaction("ROLLBACK")
        except Error as exc:
            if exc.code not in _STREAM_GONE_CODES:
                raise

    def _finish_transaction(self, verb: str) -> Flow[None]:
        """COMMIT or ROLLBACK. Over HTTP the stream is closed with it, so a failed COMMIT
        rolls back; on a kept stream a failed COMMIT leaves the transaction open, as in
        SQLite (and the probe says so)."""
        tail = self._tail(Lead.COMMIT, opens=False)
        requests = [ExecuteRequest(_stmt(verb))] if tail is None else [
            ExecuteRequest(_stmt(verb)), tail]
        reply = yield from self._send(requests)
        result = reply.results[0]
        failed = type(result) is not StreamResultOk
        self._settle(reply, tail, began=False, opened=failed, ended=not failed)
        if failed:
            error = result.error  # type: ignore[union-attr]
            state = "is still open" if self._in_txn else "was rolled back"
            raise error_from_hrana(error.code, f"{error.message} (the transaction {state})")

    def set_autocommit(self, value: object) -> Flow[None]:
        """Python 3.12's ``Connection.autocommit`` setter."""
        control = TransactionControl.from_autocommit(value)
        if control is TransactionControl.AUTOCOMMIT and self._in_txn:
            yield from self._finish_transaction("COMMIT")
        self.control = control

    def set_isolation_level(self, level: object) -> Flow[None]:
        """Legacy ``isolation_level`` setter; None commits a pending transaction first."""
        checked = check_isolation_level(level)
        if checked is None and self._in_txn and self.control is TransactionControl.LEGACY:
            yield from self._finish_transaction("COMMIT")
        self.isolation_level = checked

    def close(self) -> Flow[None]:
        """Close the stream (the server rolls back an uncommitted transaction)."""
        if self.closed:
            return
        try:
            if self._stream is not None:
                # A failure leaves the stream unusable either way; the server drops it.
                with contextlib.suppress(Error):
                    yield from self._send([CloseRequest()])
        finally:
            self.closed = True
            self._stream, self._in_txn = None, False


def _main_result(result: StreamResult) -> tuple[HranaError | None, StmtResult | None]:
    """The user statement's result in an ``execute`` or ``[BEGIN, stmt]`` batch response."""
    if type(result) is not StreamResultOk:
        return result.error, None  # type: ignore[union-attr]
    response = result.response
    if type(response) is ExecuteResponse:
        return None, response.result
    if type(response) is BatchResponse:
        batch = response.result
        for error in batch.step_errors:
            if error is not None:
                return error, None
        return None, batch.step_results[-1]
    raise InterfaceError(f"unexpected response {type(response).__name__} to a statement",
                         code="PROTOCOL_ERROR")


def _batch_result(result: StreamResult) -> tuple[HranaError | None, BatchResult | None]:
    if type(result) is not StreamResultOk:
        return result.error, None  # type: ignore[union-attr]
    if type(result.response) is not BatchResponse:
        raise InterfaceError("unexpected response to a batch", code="PROTOCOL_ERROR")
    return None, result.response.result
