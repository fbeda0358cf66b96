"""``connect()``: parse the target, pick a transport, build the session and the shell.

Local files and ``:memory:`` are served by a *local backend* that runs SQLite in
process (APSW). It lives in ``edgelite.replica`` (the client layer may not import
storage code); it registers itself with ``register_local_backend`` when
``edgelite.replica`` is imported, and ``local_backend()`` imports it on first use.
"""

from __future__ import annotations

import importlib
import os
import ssl
from typing import Any, Protocol

from edgelite.client.aio import AsyncConnection
from edgelite.client.connection import Connection
from edgelite.client.errors import NotSupportedError, OperationalError, error_from_hrana
from edgelite.client.exchange import AsyncTransport, SyncTransport, WireError
from edgelite.client.session import LEGACY_TRANSACTION_CONTROL, ClientSession
from edgelite.client.target import Kind, LocalTarget, RemoteTarget, parse_target
from edgelite.client.transport_http import (
    READ_TIMEOUT_S_DEFAULT,
    AsyncHttpTransport,
    HttpTransport,
    TransportOptions,
)
from edgelite.client.transport_ws import AsyncWsTransport, WsTransport

__all__ = ["LocalBackend", "local_backend", "open_async", "open_sync",
           "register_local_backend"]

Database = str | bytes | os.PathLike[str] | os.PathLike[bytes]


class LocalBackend(Protocol):
    """Opens local SQLite databases as transports the session can drive."""

    def open_sync(self, target: LocalTarget, *, busy_timeout_s: float) -> SyncTransport: ...

    async def open_async(self, target: LocalTarget, *,
                         busy_timeout_s: float) -> AsyncTransport: ...


_local: list[LocalBackend] = []


def register_local_backend(backend: LocalBackend) -> None:
    """Called by ``edgelite.replica`` on import (the wiring point for local files)."""
    _local[:] = [backend]


def local_backend() -> LocalBackend:
    if not _local:
        # The one place the client loads the package that serves local files. It is a
        # plugin import (the replica registers itself), not a dependency of the client.
        importlib.import_module("edgelite.replica")
    if not _local:
        raise NotSupportedError("local databases need edgelite.replica, which did not "
                                "register a local backend")
    return _local[0]


def _session(target: RemoteTarget | LocalTarget, kwargs: dict[str, Any]) -> ClientSession:
    consistency = target.consistency if isinstance(target, RemoteTarget) else "session"
    return ClientSession(
        consistency=consistency,
        autocommit=kwargs.pop("autocommit", LEGACY_TRANSACTION_CONTROL),
        isolation_level=kwargs.pop("isolation_level", ""),
    )


def _parse(database: Database, kwargs: dict[str, Any]) -> RemoteTarget | LocalTarget:
    detect_types = kwargs.pop("detect_types", 0)
    if detect_types:
        raise NotSupportedError("detect_types is not supported; convert values yourself")
    kwargs.pop("cached_statements", None)  # statement caching is the server's business
    return parse_target(database, auth_token=kwargs.pop("auth_token", None),
                        consistency=kwargs.pop("consistency", None),
                        namespace=kwargs.pop("namespace", None),
                        uri=kwargs.pop("uri", False))


def _options(timeout: float, kwargs: dict[str, Any]) -> TransportOptions:
    verify: ssl.SSLContext | bool = kwargs.pop("verify", True)
    read_timeout_s = kwargs.pop("read_timeout", READ_TIMEOUT_S_DEFAULT)
    return TransportOptions(connect_timeout_s=timeout, read_timeout_s=read_timeout_s,
                            verify=verify)


def _reject_unknown(kwargs: dict[str, Any], *, local: bool = False) -> None:
    if local:  # network options mean nothing for a file
        kwargs.pop("read_timeout", None)
        kwargs.pop("verify", None)
    if kwargs:
        raise TypeError(f"connect() got unexpected keyword arguments: {', '.join(kwargs)}")


def _open_failed(exc: WireError, database: Database) -> OperationalError:
    error = error_from_hrana(exc.code, f"cannot connect to {database!r}: {exc.message}")
    if isinstance(error, OperationalError):
        return error
    return OperationalError(error.message, code=error.code)


def open_sync(database: Database, timeout: float = 5.0, **kwargs: Any) -> Connection:
    """The implementation of ``edgelite.connect``."""
    factory = kwargs.pop("factory", None) or Connection
    check_same_thread = kwargs.pop("check_same_thread", True)
    target = _parse(database, kwargs)
    session = _session(target, kwargs)
    transport: SyncTransport
    if isinstance(target, LocalTarget):
        _reject_unknown(kwargs, local=True)
        transport = local_backend().open_sync(target, busy_timeout_s=timeout)
        session.keep_idle_stream = True
    else:
        options = _options(timeout, kwargs)
        _reject_unknown(kwargs)
        try:
            if target.kind is Kind.WEBSOCKET:
                ws = WsTransport(target, options)
                session.autocommit_probe = ws.wire.version >= 3
                session.keep_idle_stream = True  # WebSocket streams do not expire
                transport = ws
            else:
                transport = HttpTransport(target, options)
        except WireError as exc:
            raise _open_failed(exc, database) from exc
    connection: Connection = factory(session, transport, check_same_thread=check_same_thread)
    return connection


async def open_async(database: Database, timeout: float = 5.0,
                     **kwargs: Any) -> AsyncConnection:
    """The implementation of ``edgelite.aio.connect``."""
    kwargs.pop("check_same_thread", None)  # asyncio connections belong to their loop
    target = _parse(database, kwargs)
    session = _session(target, kwargs)
    transport: AsyncTransport
    if isinstance(target, LocalTarget):
        _reject_unknown(kwargs, local=True)
        transport = await local_backend().open_async(target, busy_timeout_s=timeout)
        session.keep_idle_stream = True
    else:
        options = _options(timeout, kwargs)
        _reject_unknown(kwargs)
        try:
            if target.kind is Kind.WEBSOCKET:
                ws = AsyncWsTransport(target, options)
                await ws.open()
                session.autocommit_probe = ws.wire.version >= 3
                session.keep_idle_stream = True  # WebSocket streams do not expire
                transport = ws
            else:
                transport = AsyncHttpTransport(target, options)
        except WireError as exc:
            raise _open_failed(exc, database) from exc
    return AsyncConnection(session, transport)
