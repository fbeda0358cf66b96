"""SQLAlchemy 2 dialects: ``edgelite://`` (a server) and ``edgelite+file://`` (a local file).

Both are SQLite dialects (SQL compilation, types and reflection are SQLAlchemy's own
``sqlite`` ones) whose DB-API driver is ``edgelite.client`` instead of ``sqlite3``.

Server URLs::

    edgelite://HOST[:PORT][/PATH]?authToken=TOKEN            HTTPS (TLS on by default)
    edgelite://127.0.0.1:8080?tls=0                          plain HTTP (local servers)
    edgelite://HOST?transport=ws                             WebSocket (wss; ws with tls=0)
    edgelite://:TOKEN@HOST                                   the token as the password

TLS follows ``libsql://`` (the scheme Turso prints): on unless ``tls=0``. Other query
parameters: ``consistency`` (strong | session | eventual), ``namespace``, ``timeout``
and ``read_timeout`` (seconds). File URLs are ``sqlite://``'s:
``edgelite+file:///relative.db``, ``edgelite+file:////absolute.db``,
``edgelite+file://`` (memory).

A server cannot run Python functions, so the remote dialect skips the ``regexp`` /
``floor`` helpers ``pysqlite`` installs, and it reports SERIALIZABLE isolation without
asking (``PRAGMA read_uncommitted`` is not the server's to change); AUTOCOMMIT works.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from sqlalchemy import exc, pool
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import IsolationLevel

__all__ = ["EdgeliteDialect", "EdgeliteFileDialect"]

_DISCONNECT_CODES = frozenset({"CONNECTION_LOST", "CONNECT_ERROR", "CONNECT_TIMEOUT",
                               "STREAM_LOST", "CLIENT_CLOSED"})
_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _dbapi() -> Any:
    import edgelite.client

    return edgelite.client


class EdgeliteFileDialect(SQLiteDialect_pysqlite):
    """``edgelite+file://``: a local SQLite file through edgelite's DB-API module."""

    driver = "edgelite_file"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return _dbapi()


class EdgeliteDialect(SQLiteDialect_pysqlite):
    """``edgelite://``: an edgelite (or any libSQL) server over Hrana."""

    driver = "edgelite"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return _dbapi()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.QueuePool

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        query = dict(url.query)
        tls = _FLAGS.get(str(query.pop("tls", "1")).lower())
        if tls is None:
            raise exc.ArgumentError("edgelite URL parameter tls must be 0 or 1")
        transport = str(query.pop("transport", "http")).lower()
        if transport not in ("http", "ws"):
            raise exc.ArgumentError("edgelite URL parameter transport must be http or ws")
        if not url.host:
            raise exc.ArgumentError(f"edgelite URL {url!r} has no host")
        scheme = {("http", True): "https", ("http", False): "http",
                  ("ws", True): "wss", ("ws", False): "ws"}[(transport, tls)]
        netloc = url.host if url.port is None else f"{url.host}:{url.port}"
        path = "/" + urllib.parse.quote(url.database) if url.database else ""
        kwargs: dict[str, Any] = {"check_same_thread": False}
        token = query.pop("authToken", None) or url.password
        if token:
            kwargs["auth_token"] = str(token)
        for name in ("consistency", "namespace"):
            if name in query:
                kwargs[name] = str(query.pop(name))
        for name in ("timeout", "read_timeout"):
            if name in query:
                kwargs[name] = float(str(query.pop(name)))
        if query:
            raise exc.ArgumentError(f"unknown edgelite URL parameters: {', '.join(query)}")
        return [f"{scheme}://{netloc}{path}"], kwargs

    def on_connect(self) -> Callable[[Any], None] | None:  # type: ignore[override]
        return None  # no Python functions on a server (see the module docstring)

    def get_isolation_level_values(self, dbapi_connection: Any) -> list[IsolationLevel]:
        return ["SERIALIZABLE", "AUTOCOMMIT"]

    def get_isolation_level(self, dbapi_connection: Any) -> IsolationLevel:
        return "AUTOCOMMIT" if dbapi_connection.isolation_level is None else "SERIALIZABLE"

    def set_isolation_level(self, dbapi_connection: Any, level: IsolationLevel) -> None:
        if level == "AUTOCOMMIT":
            dbapi_connection.isolation_level = None
        elif level == "SERIALIZABLE":
            dbapi_connection.isolation_level = ""
        else:
            raise exc.ArgumentError(
                f"edgelite supports SERIALIZABLE and AUTOCOMMIT, not {level!r}")

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        if getattr(e, "code", None) in _DISCONNECT_CODES:
            return True
        return super().is_disconnect(e, connection, cursor)
