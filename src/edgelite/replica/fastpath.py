"""The read fast path of replica connections.

A replica's point of being is microsecond reads. The general path (session → Hrana
messages → transport → APSW → results) costs ~15 µs per call, five times the query
itself; this module runs the common case — one statement that only reads, plain
parameters, outside any transaction — straight on the replica's connection and hands
the cursor the same ``Outcome`` the general path would have produced.

It declines (returns None, and the general path runs) whenever the result could differ:
a statement that is not a single read (SQLite's classification, ``storage.statements``),
parameters that need adaptation (bools, buffers, registered adapters, mappings), or any
SQLite error (reads are idempotent, so the general path simply runs the statement again
and reports the error the usual way).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

import apsw

from edgelite.client.outcome import Description, Outcome
from edgelite.client.params import adapters
from edgelite.errors import SqlError
from edgelite.storage.statements import Kind, StatementCache

__all__ = ["FastReader", "ReadResult"]

_PLAIN: Final = frozenset({int, float, str, bytes, type(None)})
_KNOWN_TEXTS_MAX: Final = 2048


class ReadResult:
    """What the cursor loads: the fields of ``client.outcome.Outcome`` (which
    ``CursorState.load`` reads), in a plain class — building the frozen dataclass
    cost a fifth of a whole fast read."""

    __slots__ = ("description", "lastrowid", "rowcount", "rows")

    def __init__(self, description: Description | None, rows: list[tuple[Any, ...]]) -> None:
        self.description = description
        self.rows = rows
        self.rowcount = -1
        self.lastrowid = None

    def as_outcome(self) -> Outcome:
        return cast(Outcome, self)  # same fields, read-only use


class FastReader:
    """Runs single-statement reads on ``connection`` (the replica's own connection)."""

    def __init__(self, connection: apsw.Connection, cache: StatementCache) -> None:
        self._db = connection
        self._cache = cache
        self._readable: dict[str, bool] = {}
        self._descriptions: dict[tuple[tuple[str, str | None], ...], Description | None] = {}
        self._columns: tuple[tuple[str, str | None], ...] = ()
        self._cursor = connection.cursor()
        self._traced = self._new_traced_cursor()
        self.served = 0  # reads answered here (tests and benchmarks check it is used)

    def _new_traced_cursor(self) -> apsw.Cursor:
        cursor = self._db.cursor()
        cursor.exec_trace = self._trace
        return cursor

    def _trace(self, cursor: apsw.Cursor, _sql: str, _bindings: object) -> bool:
        self._columns = cursor.get_description()
        return True

    def read(self, sql: str, parameters: Any) -> Outcome | None:
        """The outcome of running ``sql``, or None if the general path must run it."""
        readable = self._readable.get(sql)
        if readable is None:
            readable = self._classify(sql)
        if not readable:
            return None
        if type(parameters) is not tuple:
            if type(parameters) is not list:
                return None
            parameters = tuple(parameters)
        if adapters or not _plain(parameters):
            return None
        try:
            cursor = self._cursor.execute(sql, parameters)
            try:
                columns = cursor.get_description()
            except apsw.ExecutionCompleteError:
                # No row: the statement is done and forgot its columns; run it again
                # with a trace that notes them before the first step.
                rows = self._traced.execute(sql, parameters).fetchall()
                columns = self._columns
            else:
                rows = cursor.fetchall()
        except (apsw.Error, OverflowError, TypeError):
            for old in (self._cursor, self._traced):
                old.close(force=True)
            self._cursor, self._traced = self._db.cursor(), self._new_traced_cursor()
            return None
        self.served += 1
        return ReadResult(self._describe(columns), rows).as_outcome()

    def _classify(self, sql: str) -> bool:
        try:
            info = self._cache.info(self._db, sql)
        except SqlError:
            readable = False  # the general path reports the error
        else:
            readable = info.kind is Kind.READ and not info.has_more_statements
        if len(self._readable) >= _KNOWN_TEXTS_MAX:
            self._readable.clear()
        self._readable[sql] = readable
        return readable

    def _describe(self, columns: tuple[tuple[str, str | None], ...]) -> Description | None:
        found = self._descriptions.get(columns)
        if found is None and columns not in self._descriptions:
            if len(self._descriptions) >= _KNOWN_TEXTS_MAX:
                self._descriptions.clear()
            found = tuple((name, decltype, None, None, None, None, None)
                          for name, decltype in columns) or None
            self._descriptions[columns] = found
        return found

def _plain(values: Sequence[Any]) -> bool:
    # A loop, not all(<generator>): this runs on every read and is 3x cheaper.
    for value in values:  # noqa: SIM110
        if type(value) not in _PLAIN:
            return False
    return True
