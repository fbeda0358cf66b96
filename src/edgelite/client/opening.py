"""``connect()``: parse the target, pick a transport, build the session and the shell.

Local files and ``:memory:`` are served by a *local backend* that runs SQLite in
process (APSW). It lives in ``edgelite.replica`` (the client layer may not import
storage code); it registers itself with ``register_local_backend`` when
``edgelite.replica`` is imported, and ``local_backend()`` imports it on first use.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import ssl
from typing import Any, Protocol

from edgelite.client.aio import AsyncConnection
from edgelite.client.connection import Connection
from edgelite.client.errors import (
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    error_from_hrana,
)
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

__all__ = ["LocalBackend", "ReplicaRequest", "local_backend", "open_async", "open_sync",
           "register_local_backend"]

Database = str | bytes | os.PathLike[str] | os.PathLike[bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class ReplicaRequest:
    """``connect(path, sync_url=...)``: an embedded replica of ``remote`` in ``local``."""

    local: LocalTarget
    remote: RemoteTarget
    options: TransportOptions
    sync_interval_s: float | None
    offline: bool
    busy_timeout_s: float


class LocalBackend(Protocol):
    """Opens local SQLite databases as transports the session can drive, and embedded
    replicas as whole connections (they add ``sync()``)."""

    def open_sync(self, target: LocalTarget, *, busy_timeout_s: float) -> SyncTransport: ...

    async def open_async(self, target: LocalTarget, *,
                         busy_timeout_s: float) -> AsyncTransport: ...

    def open_replica_sync(self, request: ReplicaRequest, session: ClientSession, *,
                          check_same_thread: bool) -> Connection: ...

    async def open_replica_async(self, request: ReplicaRequest,
                                 session: ClientSession) -> AsyncConnection: ...


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
                        uri=kwargs.pop("uri", False),
                        max_staleness_ms=kwargs.pop("max_staleness_ms", None))


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


def _replica_request(database: Database, timeout: float,
                     kwargs: dict[str, Any]) -> ReplicaRequest | None:
    """The embedded replica ``sync_url`` asks for (None: not a replica)."""
    sync_url = kwargs.pop("sync_url", None)
    sync_interval = kwargs.pop("sync_interval", None)
    offline = kwargs.pop("offline", False)
    if sync_url is None:
        if sync_interval is not None or offline:
            raise ProgrammingError("sync_interval and offline need sync_url (an embedded "
                                   "replica of a server database)")
        return None
    if kwargs.pop("detect_types", 0):
        raise NotSupportedError("detect_types is not supported; convert values yourself")
    kwargs.pop("cached_statements", None)
    local = parse_target(database, uri=kwargs.pop("uri", False))
    remote = parse_target(sync_url, auth_token=kwargs.pop("auth_token", None),
                          consistency=kwargs.pop("consistency", None),
                          namespace=kwargs.pop("namespace", None),
                          max_staleness_ms=kwargs.pop("max_staleness_ms", None))
    if not isinstance(local, LocalTarget) or local.path in ("", ":memory:"):
        raise ProgrammingError("an embedded replica needs a local file path, with sync_url "
                               "naming the server database it follows")
    if not isinstance(remote, RemoteTarget):
        raise ProgrammingError(f"sync_url must be a server URL (libsql://, http(s)://, "
                               f"ws(s)://), got {sync_url!r}")
    if sync_interval is not None and not sync_interval > 0:
        raise ProgrammingError("sync_interval must be a positive number of seconds or None")
    return ReplicaRequest(local, remote, _options(timeout, kwargs),
                          None if sync_interval is None else float(sync_interval),
                          bool(offline), timeout)


def open_sync(database: Database, timeout: float = 5.0, **kwargs: Any) -> Connection:
    """The implementation of ``edgelite.connect``."""
    factory = kwargs.pop("factory", None) or Connection
    check_same_thread = kwargs.pop("check_same_thread", True)
    replica = _replica_request(database, timeout, kwargs)
    if replica is not None:
        if factory is not Connection:
            raise NotSupportedError("factory is not supported for embedded replicas")
        session = _session(replica.remote, kwargs)
        _reject_unknown(kwargs)
        return local_backend().open_replica_sync(replica, session,
                                                 check_same_thread=check_same_thread)
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
    replica = _replica_request(database, timeout, kwargs)
    if replica is not None:
        session = _session(replica.remote, kwargs)
        _reject_unknown(kwargs)
        return await local_backend().open_replica_async(replica, session)
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
