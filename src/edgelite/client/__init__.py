"""edgelite's DB-API 2.0 module: ``import edgelite as sqlite3`` and keep your code.

``connect(database)`` accepts a server URL (``libsql://``, ``http(s)://``, ``ws(s)://``,
with ``authToken`` / ``consistency`` URL parameters) or a local database (a path,
``file:`` URI or ``:memory:``), and returns a ``Connection`` with the API of Python
3.12's ``sqlite3``. ``edgelite.aio.connect`` is the same API for asyncio. See
``docs/python-client.md`` (usage) and ``docs/design/client.md`` (design).
"""

from __future__ import annotations

import importlib.metadata
import os
import ssl
from collections.abc import Callable
from typing import Any, Final

from edgelite.client.connection import Connection, Cursor
from edgelite.client.dbtypes import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
    sqlite_version,
    sqlite_version_info,
)
from edgelite.client.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)
from edgelite.client.opening import open_sync, register_local_backend
from edgelite.client.params import adapters, register_adapter
from edgelite.client.row import Row
from edgelite.client.session import LEGACY_TRANSACTION_CONTROL

__all__ = [
    "BINARY",
    "DATETIME",
    "LEGACY_TRANSACTION_CONTROL",
    "NUMBER",
    "PARSE_COLNAMES",
    "PARSE_DECLTYPES",
    "ROWID",
    "STRING",
    "Binary",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Row",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "adapters",
    "apilevel",
    "connect",
    "paramstyle",
    "register_adapter",
    "register_local_backend",
    "sqlite_version",
    "sqlite_version_info",
    "threadsafety",
    "version",
]

apilevel: Final = "2.0"
# Threads may share the module, not connections (as sqlite3 with check_same_thread).
threadsafety: Final = 1
# qmark (``?``, ``?NNN``) with a sequence; named (``:name``, ``@name``, ``$name``) with
# a mapping — the same two styles sqlite3 accepts.
paramstyle: Final = "qmark"
# sqlite3's detect_types flags; any non-zero value is refused by connect().
PARSE_DECLTYPES: Final = 1
PARSE_COLNAMES: Final = 2



def _package_version() -> str:
    try:
        return importlib.metadata.version("edgelite")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0"


# The DB-API module's version (sqlite3.version): edgelite's own.
version: Final = _package_version()


def connect(
    database: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    timeout: float = 5.0,
    detect_types: int = 0,
    isolation_level: str | None = "",
    check_same_thread: bool = True,
    factory: Callable[..., Connection] | None = None,
    cached_statements: int = 128,
    uri: bool = False,
    *,
    autocommit: bool | int = LEGACY_TRANSACTION_CONTROL,
    auth_token: str | None = None,
    consistency: str | None = None,
    namespace: str | None = None,
    max_staleness_ms: int | None = None,
    read_timeout: float = 120.0,
    verify: ssl.SSLContext | bool = True,
    sync_url: str | None = None,
    sync_interval: float | None = None,
    offline: bool = False,
) -> Connection:
    """Open a connection; the positional arguments are ``sqlite3.connect``'s.

    ``timeout``: local files — how long to wait for a lock (SQLite busy timeout);
    servers — how long to wait for a network connection. ``read_timeout``: how long to
    wait for a server's answer. ``auth_token`` (or the ``authToken`` URL parameter) is
    sent as ``Authorization: Bearer``. ``consistency``: ``"strong"``, ``"session"``
    (default: read your own writes) or ``"eventual"``; ``max_staleness_ms`` bounds how
    old an eventual or session read may be (the member confirms a fresh read point with
    the leader when its copy may be older). ``namespace``: the database on a
    multi-database server (``x-namespace``). ``verify``: TLS verification (an
    ``SSLContext``, or False to disable). Keyword arguments win over URL parameters.

    Embedded replica: ``database`` is a local file and ``sync_url`` the server database
    it follows (``auth_token``/``namespace`` are for that server). Reads are local;
    writes go to the server and return once the file has them, or, with
    ``offline=True``, commit locally and are pushed by ``conn.sync()``;
    ``sync_interval`` (seconds) syncs in the background. See
    ``docs/embedded-replicas.md``.
    """
    options: dict[str, Any] = {
        "detect_types": detect_types, "isolation_level": isolation_level,
        "check_same_thread": check_same_thread, "factory": factory,
        "cached_statements": cached_statements, "uri": uri, "autocommit": autocommit,
        "auth_token": auth_token, "consistency": consistency, "namespace": namespace,
        "max_staleness_ms": max_staleness_ms, "read_timeout": read_timeout, "verify": verify,
    }
    if sync_url is not None or sync_interval is not None or offline:
        options.update(sync_url=sync_url, sync_interval=sync_interval, offline=offline)
    return open_sync(database, timeout, **options)
