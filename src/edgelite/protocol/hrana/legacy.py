"""The legacy "v0" HTTP API: ``POST /`` with ``{"statements": [...]}`` (protocol.md §5.1).

Values here are plain JSON (``LegacyValue``): null, numbers, strings and
``{"base64": "..."}`` for blobs; booleans bind as 1/0. A statement is either a SQL
string or ``{"q": sql, "params": [...] | {...}}``. The response is a JSON array with one
slot per statement: ``{"results": {...}}``, ``{"error": "..."}`` for the statement that
failed, and ``null`` for the statements after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

from edgelite.protocol.hrana.messages import Message, UInt64
from edgelite.protocol.hrana.values import LegacyValue, UInt64Decimal

__all__ = [
    "LegacyError",
    "LegacyQuery",
    "LegacyRequest",
    "LegacyResponseItem",
    "LegacyResult",
    "LegacyResultSet",
]


class LegacyQuery(Message, frozen=True):
    """``params`` is positional (array) or named (object; keys with or without prefix)."""

    q: str
    params: Sequence[LegacyValue] | Mapping[str, LegacyValue] | None = None


class LegacyRequest(Message, frozen=True, kw_only=True):
    statements: Sequence[str | LegacyQuery]
    replication_index: UInt64Decimal | None = None


class LegacyResultSet(Message, frozen=True):
    columns: Sequence[str]
    rows: Sequence[Sequence[LegacyValue]]
    rows_read: UInt64 = 0
    rows_written: UInt64 = 0
    query_duration_ms: float = 0.0


class LegacyResult(Message, frozen=True):
    results: LegacyResultSet


class LegacyError(Message, frozen=True):
    """A failed statement's slot, and also the body of a 400 answer."""

    error: str


LegacyResponseItem: TypeAlias = LegacyResult | LegacyError | None
