"""The application's connection to an offline replica: local writes, captured.

``OfflineDatabase`` is the local-file transport (``local.LocalDatabase``) with one
addition: every write transaction commits together with its outbox row
(``outbox.Capture``). It watches each statement (classified by SQLite,
``storage.statements``) for where transactions begin and end:

* a write outside a transaction runs inside ``BEGIN IMMEDIATE`` … capture … ``COMMIT``
  (so autocommit writes are captured like any other);
* ``BEGIN`` / an outermost ``SAVEPOINT`` start a capture; ``COMMIT``/``END``, or the
  ``RELEASE`` of the savepoint that opened the transaction, flush it into the outbox
  first, inside the transaction; ``ROLLBACK`` discards it;
* schema statements are refused with ``OfflineSchemaChangeError``'s code and message.

A commit hook vetoes any commit that did not come through this path, so no change can
reach the file without its outbox row (the invariant ``outbox.py`` relies on).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import apsw

from edgelite.errors import SqlError
from edgelite.replica.fastpath import FastReader
from edgelite.replica.guard import SCHEMA_REFUSAL, GuardedDatabase
from edgelite.replica.outbox import Capture
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.statements import Kind, StatementCache, StatementInfo

__all__ = ["OfflineDatabase"]

# Statements that may write, run outside a transaction: wrapped in one, so they commit
# through the capture (reads and transaction control run as they are).
_WRAPPED_KINDS = frozenset({Kind.WRITE, Kind.DENIED})
_DML_CODES = frozenset({apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE})
_DEFERRED = re.compile(r"^\s*BEGIN(\s+(TRANSACTION|DEFERRED)\b[^;]*|\s*)(;\s*)?$",
                       re.IGNORECASE | re.DOTALL)


def _virtual_tables(connection: apsw.Connection) -> frozenset[str]:
    with internal_statements(connection):
        rows = connection.execute("SELECT name FROM pragma_table_list WHERE schema='main' "
                                  "AND type IN ('virtual', 'shadow')").fetchall()
    return frozenset(str(row[0]) for row in rows)


class OfflineDatabase(GuardedDatabase):
    """Local-file transport whose write transactions fill the outbox (module docstring).

    Invariants: ``capture.active`` iff a transaction is open on the connection (after
    each statement); ``savepoints`` is SQLite's savepoint stack of that transaction.
    """

    _capture: Capture
    _cache: StatementCache
    _savepoints: list[str]
    _opened_by_savepoint: bool
    _commit_allowed: bool
    _gate: threading.Lock
    _schema_version: int
    _pending_begin: str | None
    _virtual: frozenset[str]
    fast: FastReader

    @classmethod
    def open_over(cls, connection: apsw.Connection, capture: Capture,
                  commit_gate: threading.Lock) -> OfflineDatabase:
        """``commit_gate`` is held around each COMMIT (the replicator takes it while it
        replaces the file, so no local write commits into content about to go)."""
        database = cls.__new__(cls)
        database._attach(connection)
        database._capture = capture
        database._cache = StatementCache(512)
        database.fast = FastReader(connection, database._cache)
        database._savepoints = []
        database._opened_by_savepoint = False
        database._commit_allowed = False
        database._gate = commit_gate
        database._schema_version = -1
        database._pending_begin = None
        database._virtual = frozenset()
        connection.set_commit_hook(database._veto_commit)
        return database

    def idle(self) -> bool:
        """No transaction open (or about to be) on the connection."""
        return self._is_autocommit()

    def _veto_commit(self) -> bool:
        return not self._commit_allowed  # True turns the COMMIT into a ROLLBACK

    # --- hooks of LocalDatabase --------------------------------------------------------

    def _close_stream(self) -> None:
        self._pending_begin = None
        super()._close_stream()
        self._ended()

    def _is_autocommit(self) -> bool:
        return bool(self._db.get_autocommit()) and self._pending_begin is None

    def _execute(self, text: str, bindings: Any) -> tuple[list[Any], int, int]:
        db = self._db
        info = self._cache.info(db, text)
        if self._pending_begin is not None or (
                info.kind is Kind.BEGIN and _DEFERRED.match(info.first_sql) is not None
                and db.get_autocommit()):
            done = self._lazy_begin(info)
            if done is not None:
                return done
        if info.kind is Kind.DDL:
            raise SqlError(f"{SCHEMA_REFUSAL}; this replica is offline, so "
                           f"{info.first_sql.strip()[:60]!r} was refused",
                           code="SCHEMA_CHANGE_OFFLINE")
        if info.kind in _WRAPPED_KINDS:
            self._refuse_virtual_table_writes(info)
        if info.kind not in (Kind.READ, Kind.WRITE, Kind.EMPTY):
            self.fast.schema_changed()  # e.g. a TEMP object: the fast path looks again
        if db.get_autocommit():
            if info.kind in _WRAPPED_KINDS:
                return self._autocommit_write(text, bindings)
            result = super()._execute(text, bindings)
            if not db.get_autocommit():
                self._began(info)
            return result
        if info.kind is Kind.COMMIT or (info.kind is Kind.RELEASE and self._commits(info)):
            return self._commit(text, bindings)
        result = super()._execute(text, bindings)
        self._track_savepoints(info)
        if db.get_autocommit():  # ROLLBACK (or SQLite ended the transaction on an error)
            self._ended()
        return result

    def _run_script(self, script: str) -> None:
        """Statement by statement, so each one is watched like a single execute."""
        remaining = script
        while remaining.strip():
            info = self._cache.info(self._db, remaining)
            if info.kind is Kind.EMPTY or not info.first_sql:
                return
            # The single-statement check of LocalDatabase looks at the current text.
            self._text, self._traced = info.first_sql, False
            try:
                self._execute(info.first_sql, ())
            except apsw.Error as exc:
                raise self._sql_error(exc, "step") from exc
            remaining = info.remaining_sql

    def _refuse_virtual_table_writes(self, info: StatementInfo) -> None:
        """A virtual table's rows (an FTS5 index, an R*Tree) live in shadow tables that
        the server cannot merge row by row: such writes are made on the server."""
        row = self._db.execute("PRAGMA schema_version").fetchone()
        assert row is not None
        version = int(row[0])
        if version != self._schema_version:
            self._schema_version = version
            self._cache = StatementCache(512)  # trigger actions depend on the schema
            info = self._cache.info(self._db, info.sql)
            self._virtual = _virtual_tables(self._db)
        for action in info.actions:
            if action.code in _DML_CODES and (action.arg1 or "") in self._virtual:
                through = f" (through trigger {action.trigger_or_view})" \
                    if action.trigger_or_view else ""
                raise SqlError(f"table {action.arg1} is a virtual table or part of one"
                               f"{through}: an offline replica cannot write it (the server "
                               "cannot merge its rows); write it on the server",
                               code="SQLITE_AUTH")

    # --- transactions ------------------------------------------------------------------

    def _lazy_begin(self, info: StatementInfo) -> tuple[list[Any], int, int] | None:
        """A deferred BEGIN waits for the transaction's first statement: if that one
        writes, the transaction begins IMMEDIATE. (Begun deferred, its first write would
        fail at once with SQLITE_BUSY_SNAPSHOT if a sync committed while it waited for
        the write lock — a rule of WAL the busy handler cannot help with.) Returns the
        result when the statement was absorbed here."""
        empty: tuple[list[Any], int, int] = ([], 0, self._db.last_insert_rowid())
        if self._pending_begin is None:
            self._pending_begin = info.first_sql
            return empty
        if info.kind is Kind.BEGIN:
            raise SqlError("SQLite error: cannot start a transaction within a transaction",
                           code="SQLITE_UNKNOWN")
        if info.kind in (Kind.COMMIT, Kind.ROLLBACK):
            self._pending_begin = None  # an empty transaction ends
            return empty
        begin = "BEGIN IMMEDIATE" if info.kind in _WRAPPED_KINDS else self._pending_begin
        self._pending_begin = None
        self._db.execute(begin)
        self._savepoints, self._opened_by_savepoint = [], False
        self._capture.start()
        return None

    def _autocommit_write(self, text: str, bindings: Any) -> tuple[list[Any], int, int]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        self._capture.start()
        try:
            rows, changes, last_rowid = super()._execute(text, bindings)
            self._capture.flush()
            self._commit_now("COMMIT")
        except BaseException:
            if not db.get_autocommit():
                db.execute("ROLLBACK")
            raise
        finally:
            self._ended()
        db.set_last_insert_rowid(last_rowid)
        return rows, changes, last_rowid

    def _commit(self, text: str, bindings: Any) -> tuple[list[Any], int, int]:
        db = self._db
        rowid = db.last_insert_rowid()
        if self._capture.active:
            self._capture.flush()
        rows, changes, _ = self._commit_now(text, bindings)
        db.set_last_insert_rowid(rowid)
        if db.get_autocommit():
            self._ended()
        return rows, changes, rowid

    def _commit_now(self, text: str, bindings: Any = ()) -> tuple[list[Any], int, int]:
        with self._gate:
            self._commit_allowed = True
            try:
                return super()._execute(text, bindings)
            finally:
                self._commit_allowed = False

    def _began(self, info: StatementInfo) -> None:
        self._savepoints = []
        self._opened_by_savepoint = info.kind is Kind.SAVEPOINT
        if info.kind is Kind.SAVEPOINT and info.savepoint_name is not None:
            self._savepoints.append(info.savepoint_name.lower())
        self._capture.start()

    def _ended(self) -> None:
        self._capture.stop()
        self._savepoints = []
        self._opened_by_savepoint = False

    def _commits(self, info: StatementInfo) -> bool:
        """Does this RELEASE end the transaction (the savepoint that opened it)?"""
        name = (info.savepoint_name or "").lower()
        if not self._opened_by_savepoint or name not in self._savepoints:
            return False
        return len(self._savepoints) - 1 - self._savepoints[::-1].index(name) == 0

    def _track_savepoints(self, info: StatementInfo) -> None:
        name = (info.savepoint_name or "").lower()
        if info.kind is Kind.SAVEPOINT:
            self._savepoints.append(name)
        elif info.kind in (Kind.RELEASE, Kind.ROLLBACK_TO) and name in self._savepoints:
            position = len(self._savepoints) - 1 - self._savepoints[::-1].index(name)
            keep = position if info.kind is Kind.RELEASE else position + 1
            del self._savepoints[keep:]
