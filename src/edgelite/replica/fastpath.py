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

from typing import Any, Final

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
    ``CursorState.load`` copies out and does not keep), in a plain mutable class that
    each reader reuses — building a frozen dataclass per read cost a fifth of a read."""

    __slots__ = ("description", "lastrowid", "rowcount", "rows")

    def __init__(self) -> None:
        self.description: Description | None = None
        self.rows: list[tuple[Any, ...]] = []
        self.rowcount = -1
        self.lastrowid = None


_NOT_READ: Final = "not a plain read"


class FastReader:
    """Runs single-statement reads on ``connection`` (the replica's own connection).

    Per statement text it remembers whether it is a plain read and its result columns,
    valid for one schema ``generation``: the owner calls ``schema_changed()`` whenever
    the schema may have moved (pulled DDL, a new snapshot, anything the general path
    ran locally), and texts are classified and described again.
    """

    def __init__(self, connection: apsw.Connection, cache: StatementCache) -> None:
        self._db = connection
        self._cache = cache
        self.generation = 0
        self._known: dict[str, tuple[int, Description | str | None]] = {}
        self._columns: tuple[tuple[str, str | None], ...] = ()
        self._cursor = connection.cursor()
        self._traced = self._new_traced_cursor()
        self._result = ReadResult()
        self.served = 0  # reads answered here (tests and benchmarks check it is used)

    def schema_changed(self) -> None:
        self.generation += 1

    def _new_traced_cursor(self) -> apsw.Cursor:
        cursor = self._db.cursor()
        cursor.exec_trace = self._trace
        return cursor

    def _trace(self, cursor: apsw.Cursor, _sql: str, _bindings: object) -> bool:
        self._columns = cursor.get_description()
        return True

    def read(self, sql: str, parameters: Any) -> Outcome | None:
        """The outcome of running ``sql``, or None if the general path must run it."""
        known = self._known.get(sql)
        if known is None or known[0] != self.generation:
            if not self._readable(sql):
                return None
            known = None
        elif known[1] is _NOT_READ:
            return None
        if type(parameters) is not tuple:
            if type(parameters) is not list:
                return None
            parameters = tuple(parameters)
        if adapters:
            return None
        for value in parameters:  # inline: this runs on every read
            if type(value) not in _PLAIN:
                return None
        try:
            if known is None:  # first run in this generation: note the columns
                rows = self._traced.execute(sql, parameters).fetchall()
                description = _describe(self._columns)
                self._remember(sql, description)
            else:
                rows = self._cursor.execute(sql, parameters).fetchall()
                description = known[1]  # type: ignore[assignment]
        except (apsw.Error, OverflowError, TypeError):
            for old in (self._cursor, self._traced):
                old.close(force=True)
            self._cursor, self._traced = self._db.cursor(), self._new_traced_cursor()
            return None
        self.served += 1
        result = self._result
        result.description = description
        result.rows = rows
        return result  # type: ignore[return-value]  # Outcome's fields, read-only use

    def _readable(self, sql: str) -> bool:
        try:
            info = self._cache.info(self._db, sql)
        except SqlError:
            readable = False  # the general path reports the error
        else:
            readable = info.kind is Kind.READ and not info.has_more_statements
        if not readable:
            self._remember(sql, _NOT_READ)
        return readable

    def _remember(self, sql: str, value: Description | str | None) -> None:
        if len(self._known) >= _KNOWN_TEXTS_MAX:
            self._known.clear()
        self._known[sql] = (self.generation, value)


def _describe(columns: tuple[tuple[str, str | None], ...]) -> Description | None:
    return tuple((name, decltype, None, None, None, None, None)
                 for name, decltype in columns) or None
