"""What a program sees: ``SqlContext``, on a reader or on the writer.

Both contexts give SQLite's own semantics for one client (autocommit statements,
BEGIN … COMMIT, savepoints) on top of connections that are shared between clients:

* ``ReaderContext`` runs reads on a read-only connection. A statement that needs the
  writer raises ``NeedsWriter`` (the job moves to the writer) or, for a caller that may
  only read, ``PermissionDeniedError``. Read transactions pin the session to the reader.
* ``WriterContext`` runs on the writer thread. Autocommit writes join the group
  transaction (each statement in its own savepoint, so a failed statement undoes only
  itself) or, outside a group, get an implicit transaction of their own. ``BEGIN``
  flushes the group and makes the session the writer's owner until COMMIT/ROLLBACK.
  Transaction-control statements never reach SQLite raw where they could end a
  transaction edgelite did not start: COMMIT goes through the commit step.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import apsw

from edgelite.errors import BlockedError, PermissionDeniedError, SqlError
from edgelite.storage.executor import (
    Column,
    ResponseBudget,
    StatementResult,
    StatementRunner,
    Value,
    bind_arguments,
)
from edgelite.storage.session import GroupLost, NeedsWriter, SqlSession, TxnState
from edgelite.storage.statements import (
    Kind,
    StatementCache,
    StatementInfo,
    is_blank_sql,
    probe_statement,
)

if TYPE_CHECKING:
    from edgelite.storage.describe import Description
    from edgelite.storage.writer import Writer

_NO_NAMED: Mapping[str, Value] = {}
_STATEMENT_SAVEPOINT = "SAVEPOINT edgelite_statement"
_STATEMENT_RELEASE = "RELEASE edgelite_statement"
_STATEMENT_ROLLBACK = "ROLLBACK TO edgelite_statement"
_DDL_SAVEPOINT = "SAVEPOINT edgelite_ddl"
_DDL_RELEASE = "RELEASE edgelite_ddl"
_DDL_ROLLBACK = "ROLLBACK TO edgelite_ddl"


class SqlContext(Protocol):
    """The API a program uses; every method runs on the connection's own thread."""

    @property
    def is_autocommit(self) -> bool: ...

    def execute(self, sql: str, args: Sequence[Value] = (),
                named_args: Mapping[str, Value] = _NO_NAMED, *,
                want_rows: bool = True) -> StatementResult: ...

    def execute_script(self, sql: str) -> None: ...

    def describe(self, sql: str) -> Description: ...


def empty_result() -> StatementResult:
    return StatementResult((), [], 0, None, 0, 0, 0.0)


def _no_transaction_error(info: StatementInfo) -> SqlError:
    text = {Kind.COMMIT: "cannot commit - no transaction is active",
            Kind.ROLLBACK: "cannot rollback - no transaction is active"}.get(
        info.kind, f"no such savepoint: {info.savepoint_name}")
    return SqlError(f"SQLite error: {text}", code="SQLITE_UNKNOWN", sqlite_code=1)


class _ContextBase(abc.ABC):
    def __init__(self, session: SqlSession, runner: StatementRunner,
                 cache: StatementCache, budget: ResponseBudget) -> None:
        self.session = session
        self.runner = runner
        self.cache = cache
        self.budget = budget

    @property
    def is_autocommit(self) -> bool:
        return self.session.is_autocommit

    @property
    def connection(self) -> apsw.Connection:
        return self.runner.connection

    def execute(self, sql: str, args: Sequence[Value] = (),
                named_args: Mapping[str, Value] = _NO_NAMED, *,
                want_rows: bool = True) -> StatementResult:
        info = self.cache.info(self.connection, sql)
        _check_single_statement(info)
        bindings = bind_arguments(info, args, named_args)
        return self._dispatch(info, bindings, want_rows)

    def execute_script(self, sql: str) -> None:
        remaining = sql
        while not is_blank_sql(remaining):
            info = probe_statement(self.connection, remaining)
            if info.kind is not Kind.EMPTY:
                _check_allowed(info)
                if info.parameter_names:
                    raise SqlError("SQL input error: a script cannot have parameters",
                                   code="SQL_INPUT_ERROR")
                self._dispatch(info, (), False)
            if len(info.remaining_sql) >= len(remaining):
                break  # nothing consumed: cannot make progress
            remaining = info.remaining_sql

    def describe(self, sql: str) -> Description:
        from edgelite.storage.describe import describe_statement

        return describe_statement(self.connection, sql)

    @abc.abstractmethod
    def _dispatch(self, info: StatementInfo, bindings: tuple[Value, ...],
                  want_rows: bool) -> StatementResult:
        """Run one checked, bound statement the way this kind of connection must."""

    def _foreign_keys(self, info: StatementInfo) -> StatementResult:
        """``PRAGMA foreign_keys`` is per client, applied when its transactions begin."""
        if info.pragma_value is None:
            return StatementResult((Column("foreign_keys", None),),
                                   [(int(self.session.foreign_keys),)], 0, None, 1, 0, 0.0)
        if self.session.is_autocommit:  # inside a transaction SQLite ignores it too
            self.session.foreign_keys = info.pragma_value.strip().lower() in (
                "1", "on", "true", "yes")
        return empty_result()

    def _run(self, info: StatementInfo, bindings: tuple[Value, ...],
             want_rows: bool) -> StatementResult:
        # The connection is shared: without this, an INSERT that inserts nothing (OR
        # IGNORE, an upsert that updates) reported another client's last rowid.
        connection = self.connection
        connection.set_last_insert_rowid(self.session.last_insert_rowid)
        try:
            return self.runner.run(info, bindings, want_rows=want_rows, budget=self.budget)
        finally:
            self.session.last_insert_rowid = connection.last_insert_rowid()

    def _aborted(self, info: StatementInfo) -> StatementResult:
        """The transaction was rolled back under the client: refuse until it ends it."""
        if info.kind in (Kind.ROLLBACK, Kind.COMMIT):
            reason = self.session.abort_reason
            self.session.leave_txn()
            if info.kind is Kind.ROLLBACK:
                return empty_result()
            raise SqlError(reason, code="TRANSACTION_TIMEOUT")
        raise SqlError(self.session.abort_reason, code="TRANSACTION_TIMEOUT")


def _check_single_statement(info: StatementInfo) -> None:
    if info.kind is Kind.EMPTY:
        raise SqlError("SQL string does not contain any statement", code="SQL_NO_STATEMENT")
    if info.has_more_statements:
        raise SqlError("SQL string contains more than one statement",
                       code="SQL_MANY_STATEMENTS")
    _check_allowed(info)


def _check_allowed(info: StatementInfo) -> None:
    if info.kind is Kind.DENIED:
        raise SqlError(f"SQLite error: not authorized: {info.denied_reason}",
                       code="SQLITE_AUTH", sqlite_code=apsw.SQLITE_AUTH)


class ReaderContext(_ContextBase):
    """Runs a program on a read-only connection (see module docstring)."""

    def __init__(self, session: SqlSession, runner: StatementRunner, cache: StatementCache,
                 budget: ResponseBudget, reader: object) -> None:
        super().__init__(session, runner, cache, budget)
        self._reader = reader

    def _dispatch(self, info: StatementInfo, bindings: tuple[Value, ...],
                  want_rows: bool) -> StatementResult:
        session = self.session
        if session.txn is TxnState.ABORTED:
            return self._aborted(info)
        if info.kind is Kind.PRAGMA_FOREIGN_KEYS:
            return self._foreign_keys(info)
        starts_txn = info.kind is Kind.BEGIN or (
            info.kind is Kind.SAVEPOINT and session.is_autocommit)
        if session.is_autocommit and starts_txn and not (
                session.reads_only or info.readonly_begin):
            raise NeedsWriter()
        if info.needs_writer and not (starts_txn and session.reads_only):
            self._refuse_write()
        result = self._run(info, bindings, want_rows)
        self._sync_pin()
        return result

    def _refuse_write(self) -> None:
        if self.session.write_blocked_reason is not None and not self.session.read_only:
            raise BlockedError(f"Operation was blocked: {self.session.write_blocked_reason}")
        if self.session.read_only:
            raise PermissionDeniedError(
                "Authorization forbidden: Current session doesn't not have Write "
                f"permission to namespace {self.session.database_name}")
        if self.session.txn is TxnState.READ:
            raise SqlError("SQLite error: attempt to write a readonly database "
                           "(the transaction was opened READONLY)", code="SQLITE_READONLY",
                           sqlite_code=apsw.SQLITE_READONLY)
        raise NeedsWriter()

    def _sync_pin(self) -> None:
        """A reader connection inside a transaction belongs to this session until it ends."""
        session = self.session
        if self.connection.in_transaction:
            if session.txn is TxnState.NONE:
                session.txn = TxnState.READ
                session.reader = self._reader  # type: ignore[assignment]
        elif session.txn is TxnState.READ:
            session.leave_txn()


class WriterContext(_ContextBase):
    """Runs a program on the writer thread, inside a group or on its own."""

    def __init__(self, writer: Writer, session: SqlSession, budget: ResponseBudget,
                 *, grouped: bool) -> None:
        super().__init__(session, writer.runner, writer.cache, budget)
        self.writer = writer
        self.grouped = grouped
        self.commit_index: int | None = None
        self.left_group = False

    def _note_commit(self, index: int | None) -> None:
        if index is not None:
            self.commit_index = max(index, self.commit_index or 0)

    def _dispatch(self, info: StatementInfo, bindings: tuple[Value, ...],
                  want_rows: bool) -> StatementResult:
        session = self.session
        if session.txn is TxnState.ABORTED:
            return self._aborted(info)
        if info.kind is Kind.PRAGMA_FOREIGN_KEYS:
            return self._foreign_keys(info)
        if session.txn is TxnState.WRITE:
            return self._in_transaction(info, bindings, want_rows)
        return self._autocommit(info, bindings, want_rows)

    # --- outside a client transaction ----------------------------------------------------

    def _autocommit(self, info: StatementInfo, bindings: tuple[Value, ...],
                    want_rows: bool) -> StatementResult:
        kind = info.kind
        if kind is Kind.BEGIN:
            self._begin(by_savepoint=False, readonly=info.readonly_begin)
            return empty_result()
        if kind is Kind.SAVEPOINT:
            self._begin(by_savepoint=True, readonly=False)
            return self._in_transaction(info, bindings, want_rows)
        if kind in (Kind.COMMIT, Kind.ROLLBACK, Kind.RELEASE, Kind.ROLLBACK_TO):
            raise _no_transaction_error(info)
        if kind is Kind.READ:
            return self._run(info, bindings, want_rows)
        if self.grouped and self.session.foreign_keys != self.writer.txn_foreign_keys:
            self._leave_group()
        if self.grouped:
            return self._in_group(info, bindings, want_rows)
        return self._implicit_transaction(info, bindings, want_rows)

    def _in_group(self, info: StatementInfo, bindings: tuple[Value, ...],
                  want_rows: bool) -> StatementResult:
        """One autocommit write inside the shared group transaction."""
        connection = self.connection
        connection.execute(_STATEMENT_SAVEPOINT)
        try:
            result = self._write(info, bindings, want_rows)
            self.writer.check_deferred_foreign_keys()
        except BaseException:
            if not connection.in_transaction:
                raise GroupLost() from None
            connection.execute(_STATEMENT_ROLLBACK)
            connection.execute(_STATEMENT_RELEASE)
            raise
        connection.execute(_STATEMENT_RELEASE)
        return result

    def _implicit_transaction(self, info: StatementInfo, bindings: tuple[Value, ...],
                              want_rows: bool) -> StatementResult:
        writer = self.writer
        writer.begin_transaction(self.session.foreign_keys)
        try:
            result = self._write(info, bindings, want_rows)
            writer.check_deferred_foreign_keys()
            self._note_commit(writer.commit_transaction())
        except BaseException:
            writer.rollback_transaction()
            raise
        return result

    def _begin(self, *, by_savepoint: bool, readonly: bool) -> None:
        if self.grouped:
            self._leave_group()
        self.writer.begin_transaction(self.session.foreign_keys)
        self.session.enter_write_txn(by_savepoint=by_savepoint, readonly=readonly)
        self.writer.take_ownership(self.session)

    def _leave_group(self) -> None:
        """Commit the group now; this job continues on its own."""
        # Leave first: if the flush fails, the group transaction is gone and the writer
        # must deliver this job's error and requeue the rest, not run them "grouped"
        # with no transaction open.
        self.grouped = False
        self.left_group = True
        self._note_commit(self.writer.flush_group())

    def _write(self, info: StatementInfo, bindings: tuple[Value, ...],
               want_rows: bool) -> StatementResult:
        if info.kind is Kind.DDL:
            return self._ddl(info, bindings, want_rows)
        return self._run(info, bindings, want_rows)

    def _ddl(self, info: StatementInfo, bindings: tuple[Value, ...],
             want_rows: bool) -> StatementResult:
        """Run a schema statement as a DDL segment of the effect.

        It runs in its own savepoint: if anything fails after SQLite ran it (copying the
        rows of ``CREATE TABLE … AS SELECT``, a deferred foreign-key check), the savepoint
        undoes it and the recorder forgets its segments, so replicas never get a DDL
        the leader rolled back.
        """
        if bindings:
            raise SqlError("SQL input error: schema statements cannot have parameters",
                           code="SQL_INPUT_ERROR")
        writer = self.writer
        recorder = writer.recorder
        connection = self.connection
        # `CREATE TABLE IF NOT EXISTS x AS SELECT` on an existing x changes nothing.
        creates_table = info.is_ctas and not writer.table_exists(info.created_table)
        mark = recorder.before_ddl()
        connection.execute(_DDL_SAVEPOINT)
        try:
            writer.before_drop_table(info)
            result = self._run(info, bindings, want_rows)
            if creates_table:
                writer.replicate_created_table(info)
            else:
                recorder.after_ddl(None if info.is_ctas else info.first_sql)
            if self.grouped:  # the group's per-statement check, before the segment stays
                writer.check_deferred_foreign_keys()
        except BaseException:
            if connection.in_transaction:
                connection.execute(_DDL_ROLLBACK)
                connection.execute(_DDL_RELEASE)
            recorder.discard_since(mark)
            raise
        connection.execute(_DDL_RELEASE)
        return result

    # --- inside a client transaction ---------------------------------------------------

    def _in_transaction(self, info: StatementInfo, bindings: tuple[Value, ...],
                        want_rows: bool) -> StatementResult:
        kind = info.kind
        session = self.session
        if kind is Kind.COMMIT:
            self._commit()
            return empty_result()
        if kind is Kind.ROLLBACK:
            self._rollback()
            return empty_result()
        if kind is Kind.RELEASE:
            return self._release(info, bindings, want_rows)
        if kind is Kind.ROLLBACK_TO:
            self._check_rollback_to(info)
        if session.readonly_txn and info.needs_writer:
            raise SqlError("SQLite error: attempt to write a readonly database (the "
                           "transaction was opened READONLY)", code="SQLITE_READONLY",
                           sqlite_code=apsw.SQLITE_READONLY)
        try:
            result = self._write(info, bindings, want_rows)
        except SqlError:
            self._after_failure()
            raise
        if kind is Kind.SAVEPOINT:
            session.savepoints.append((str(info.savepoint_name), self.writer.recorder.mark()))
        elif kind is Kind.ROLLBACK_TO:
            del session.savepoints[self._savepoint_position(info) + 1:]
        return result

    def _commit(self) -> None:
        writer = self.writer
        writer.check_deferred_foreign_keys()
        try:
            self._note_commit(writer.commit_transaction())
        except SqlError:
            self._after_failure()
            raise
        except BaseException:
            writer.rollback_transaction()
            self._end_transaction()
            raise
        self._end_transaction()

    def _rollback(self) -> None:
        self.writer.rollback_transaction()
        self._end_transaction()

    def _release(self, info: StatementInfo, bindings: tuple[Value, ...],
                 want_rows: bool) -> StatementResult:
        position = self._savepoint_position(info)
        result = self._run(info, bindings, want_rows)  # SQLite reports unknown names
        del self.session.savepoints[position:]
        if position == 0 and self.session.started_by_savepoint:
            self._commit()  # releasing the outermost savepoint ends the transaction
        return result

    def _savepoint_position(self, info: StatementInfo) -> int:
        name = str(info.savepoint_name).lower()
        for position in range(len(self.session.savepoints) - 1, -1, -1):
            if self.session.savepoints[position][0].lower() == name:
                return position
        return -1

    def _check_rollback_to(self, info: StatementInfo) -> None:
        position = self._savepoint_position(info)
        if position < 0:
            return  # SQLite raises "no such savepoint"
        mark = self.session.savepoints[position][1]
        if self.writer.recorder.segments_cut_since(mark):
            raise SqlError(
                "SQLite error: ROLLBACK TO a savepoint that contains a schema change is "
                "not supported; roll back the whole transaction instead",
                code="SQLITE_UNKNOWN", sqlite_code=1)

    def _after_failure(self) -> None:
        """Some errors roll back the whole transaction in SQLite; mirror that."""
        if not self.connection.in_transaction:
            self.writer.recorder.abandon()
            self._end_transaction()

    def _end_transaction(self) -> None:
        self.session.leave_txn()
        self.writer.release_ownership(self.session)
