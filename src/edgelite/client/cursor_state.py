"""Cursor bookkeeping shared by the sync and async cursors: results, fetch position,
``description``, ``rowcount``, ``lastrowid``, ``arraysize`` and the row factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgelite.client.errors import ProgrammingError
from edgelite.client.outcome import Description, Outcome

__all__ = ["CursorState"]


class CursorState:
    """Rows of the last operation, fetched in order.

    Invariant: ``0 <= _position <= len(_rows)``; a closed cursor has no rows.
    """

    def __init__(self, row_factory: Callable[[Any, tuple[Any, ...]], Any] | None,
                 text_factory: Any = str) -> None:
        self.description: Description | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1
        self.row_factory = row_factory
        self._text_factory = text_factory
        self._rows: list[tuple[Any, ...]] = []
        self._position = 0
        self._closed = False

    def check_open(self) -> None:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.", code="CLIENT_CLOSED")

    def reset(self) -> None:
        """Forget the previous result before a new operation (as sqlite3 does)."""
        self.check_open()
        self.description = None
        self.rowcount = -1
        self._rows = []
        self._position = 0

    def load(self, outcome: Outcome, text_factory: Any = str) -> None:
        self.description = outcome.description
        self.rowcount = outcome.rowcount
        if outcome.lastrowid is not None:
            self.lastrowid = outcome.lastrowid
        rows = outcome.rows
        if text_factory is not str and rows:
            rows = [tuple(text_factory(v.encode("utf-8")) if type(v) is str else v
                          for v in row) for row in rows]
        self._rows = rows
        self._position = 0

    def _shape(self, cursor: Any, row: tuple[Any, ...]) -> Any:
        factory = self.row_factory
        return row if factory is None else factory(cursor, row)

    def fetchone(self, cursor: Any) -> Any:
        self.check_open()
        if self._position >= len(self._rows):
            return None
        row = self._rows[self._position]
        self._position += 1
        return self._shape(cursor, row)

    def fetchmany(self, cursor: Any, size: int | None) -> list[Any]:
        self.check_open()
        count = self.arraysize if size is None else size
        if count < 0:
            count = len(self._rows)
        start = self._position
        self._position = min(len(self._rows), start + count)
        return [self._shape(cursor, r) for r in self._rows[start:self._position]]

    def fetchall(self, cursor: Any) -> list[Any]:
        self.check_open()
        start, self._position = self._position, len(self._rows)
        if self.row_factory is None:
            return self._rows[start:] if start else list(self._rows)
        return [self._shape(cursor, r) for r in self._rows[start:]]

    def close(self) -> None:
        self._closed = True
        self._rows = []
        self._position = 0
