"""PEP 249 type objects and constructors, and the module's version attributes.

``cursor.description[i][1]`` is the column's declared type (``"INTEGER"``,
``"VARCHAR(20)"``, or None for an expression). The type objects compare equal to a
declared type by SQLite's affinity rules (https://sqlite.org/datatype3.html §3.1), so
``description[0][1] == edgelite.NUMBER`` works as PEP 249 intends.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import time
from typing import Final

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "DBAPITypeObject",
    "Date",
    "DateFromTicks",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "affinity",
    "sqlite_version",
    "sqlite_version_info",
]

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = memoryview


def DateFromTicks(ticks: float) -> datetime.date:
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:
    return Timestamp(*time.localtime(ticks)[:6])


def affinity(decltype: str | None) -> str:
    """SQLite's column affinity for a declared type: INTEGER, TEXT, BLOB, REAL, NUMERIC."""
    if not decltype:
        return "BLOB"
    upper = decltype.upper()
    if "INT" in upper:
        return "INTEGER"
    if "CHAR" in upper or "CLOB" in upper or "TEXT" in upper:
        return "TEXT"
    if "BLOB" in upper:
        return "BLOB"
    if "REAL" in upper or "FLOA" in upper or "DOUB" in upper:
        return "REAL"
    return "NUMERIC"


class DBAPITypeObject:
    """Equal to declared types of the given affinities (and to names in ``extra``)."""

    def __init__(self, name: str, affinities: frozenset[str],
                 extra: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.affinities = affinities
        self.extra = extra

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return self is other
        if other is None:
            return False  # an expression column has no declared type
        if isinstance(other, str):
            if other.split("(")[0].strip().upper() in self.extra:
                return True
            return affinity(other) in self.affinities
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"edgelite.{self.name}"


STRING: Final = DBAPITypeObject("STRING", frozenset({"TEXT"}))
BINARY: Final = DBAPITypeObject("BINARY", frozenset({"BLOB"}))
NUMBER: Final = DBAPITypeObject("NUMBER", frozenset({"INTEGER", "REAL", "NUMERIC"}))
DATETIME: Final = DBAPITypeObject(
    "DATETIME", frozenset(), frozenset({"DATE", "TIME", "DATETIME", "TIMESTAMP"}))
ROWID: Final = DBAPITypeObject("ROWID", frozenset(), frozenset({"ROWID"}))


def _sqlite_version() -> str:
    """The SQLite of the bundled APSW (the server's and local files' engine).

    Read from package metadata, so the client does not import APSW; the floor is the
    version edgelite requires (``apsw>=3.54.1``).
    """
    try:
        parts = importlib.metadata.version("apsw").split(".")
    except importlib.metadata.PackageNotFoundError:
        return "3.54.1"
    return ".".join(parts[:3])


sqlite_version: Final = _sqlite_version()
sqlite_version_info: Final = tuple(int(p) for p in sqlite_version.split(".") if p.isdigit())
