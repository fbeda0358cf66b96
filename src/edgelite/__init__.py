"""edgelite: distributed SQLite for edge applications.

``import edgelite as sqlite3`` gives a DB-API 2.0 module: ``edgelite.connect(url)``
talks to an edgelite (or any libSQL) server, opens a local file, or (with ``sync_url``)
an embedded replica; ``edgelite.changes(url, since=...)`` iterates a database's changes.
The names are loaded lazily so importing edgelite stays cheap and free of side effects.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_CLIENT_NAMES = frozenset({
    "connect", "apilevel", "threadsafety", "paramstyle", "Connection", "Cursor", "Row",
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError",
    "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
    "NotSupportedError", "Binary", "Date", "Time", "Timestamp", "DateFromTicks",
    "TimeFromTicks", "TimestampFromTicks", "STRING", "BINARY", "NUMBER", "DATETIME",
    "ROWID", "sqlite_version", "sqlite_version_info", "version",
    "LEGACY_TRANSACTION_CONTROL", "register_adapter", "adapters", "PARSE_DECLTYPES",
    "PARSE_COLNAMES",
})


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from edgelite import client

        return getattr(client, name)
    if name == "aio":  # ``edgelite.aio`` without importing it first
        return importlib.import_module("edgelite.aio")
    if name == "changes":  # a database's change stream (docs/embedded-replicas.md)
        return importlib.import_module("edgelite.replica.changes").changes
    raise AttributeError(f"module 'edgelite' has no attribute {name!r}")
