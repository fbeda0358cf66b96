"""Embedded replica connections: the DB-API shells plus ``sync()``.

``connect("local.db", sync_url=...)`` builds, for one replica file:

* a ``Replicator`` (``replicator.py``): checks or bootstraps the file, owns the apply
  connection, syncs on demand and, with ``sync_interval``, in a background thread;
* the application's own SQLite connection to the file (WAL, the ``ReplicaGuard``
  authorizer) behind a transport the client session drives: ``OfflineDatabase``
  (``offline=True``: local writes, captured into the outbox) or
  ``OnlineReplicaTransport`` (local reads, writes to the server over HTTP);
* a ``ReplicaConnection`` / ``AsyncReplicaConnection``: the usual connection, whose
  calls return only once a remote write is in the file (read-your-writes), and
  ``sync()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from pathlib import Path
from threading import get_ident
from typing import Any, TypeVar

import apsw

from edgelite.client.aio import AsyncConnection, drive_async
from edgelite.client.connection import Connection, Cursor
from edgelite.client.exchange import Flow, Pipeline, Reply, SyncTransport
from edgelite.client.opening import ReplicaRequest
from edgelite.client.outcome import Outcome
from edgelite.client.session import ClientSession
from edgelite.client.transport_http import HttpTransport
from edgelite.replica.errors import SyncUnavailableError
from edgelite.replica.guard import GuardedDatabase, ReplicaGuard
from edgelite.replica.local import LocalBackend
from edgelite.replica.outbox import Capture
from edgelite.replica.remote import SyncClient
from edgelite.replica.replicator import Replicator, SyncResult
from edgelite.replica.transport_offline import OfflineDatabase
from edgelite.replica.transport_online import OnlineReplicaTransport
from edgelite.storage import hlc

__all__ = ["AsyncReplicaConnection", "ReplicaBackend", "ReplicaConnection",
           "open_replica_async", "open_replica_sync"]

T = TypeVar("T")
# Sync requests wait at most this long for an answer (a cut link is noticed soon; a
# long poll adds its own wait on top).
SYNC_READ_TIMEOUT_S_MAX = 10.0


class ReplicaTransport:
    """The transport of a replica connection, with what the shells need besides."""

    def __init__(self, inner: OfflineDatabase | OnlineReplicaTransport,
                 replicator: Replicator, read_timeout_s: float) -> None:
        self.inner = inner
        self.replicator = replicator
        self.read_timeout_s = read_timeout_s

    def exchange(self, pipeline: Pipeline) -> Reply:
        return self.inner.exchange(pipeline)

    def settle(self) -> None:
        """Read-your-writes: wait until the file has the remote writes just made."""
        inner = self.inner
        if not isinstance(inner, OnlineReplicaTransport) or inner.remote_open:
            return
        index, inner.pending_index = inner.pending_index, None
        if index is None:
            return
        try:
            self.replicator.wait_applied(index, self.read_timeout_s)
        except SyncUnavailableError as exc:
            raise SyncUnavailableError(
                f"the write committed on the server (index {index}) but the replica could "
                f"not apply it yet: {exc.message}") from exc

    def create_function(self, name: str, narg: int, func: Callable[..., Any] | None, *,
                        deterministic: bool = False) -> None:
        self.inner.create_function(name, narg, func, deterministic=deterministic)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.replicator.close()

    def abort(self) -> None:
        """From a finaliser: never waits (docs/design/client.md)."""
        with contextlib.suppress(Exception):
            self.inner.close()
        with contextlib.suppress(Exception):
            self.replicator.abort()


class ReplicaCursor(Cursor):
    """A cursor whose plain reads take the fast path (same results, see fastpath.py)."""

    connection: ReplicaConnection

    def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        connection = self.connection
        outcome = connection._read_fast(sql, parameters) if type(sql) is str else None
        if outcome is None:
            return super().execute(sql, parameters)
        state = self._state
        state.check_open()
        state.load(outcome, connection.text_factory)  # replaces everything reset() clears
        return self


class ReplicaConnection(Connection):
    """A DB-API connection to an embedded replica; ``sync()`` brings it up to date."""

    _transport: ReplicaTransport

    def cursor(self, factory: Callable[[Connection], Cursor] | None = None) -> Cursor:
        self._check()
        return (factory or ReplicaCursor)(self)

    def _run(self, flow: Flow[T]) -> T:
        result = super()._run(flow)
        self._transport.settle()
        return result

    def _read_fast(self, sql: str, parameters: Any) -> Outcome | None:
        """A read outside any transaction, straight on the file, or None (anything else,
        including a closed connection or a wrong thread: the general path says so)."""
        session = self._session
        if session.closed or session.in_transaction or (
                self._thread_id is not None and self._thread_id != get_ident()):
            return None
        transport = self._transport
        inner = transport.inner
        if not inner.idle():
            return None
        outcome = inner.fast.read(sql, parameters)
        if outcome is not None:
            index = transport.replicator.applied_index
            if index != session.replication_index:
                session.observe_index(index)
        return outcome

    def sync(self) -> SyncResult:
        """Push the outbox (offline replicas), then pull what the server has."""
        self._check()
        return self._transport.replicator.sync()

    @property
    def replica_index(self) -> int:
        """The server index the local file has applied."""
        return self._transport.replicator.applied_index


class AsyncReplicaConnection(AsyncConnection):
    """The asyncio twin of ``ReplicaConnection`` (``await conn.sync()``); blocking work
    runs on the connection's own thread."""

    _transport: AsyncReplicaTransport

    async def _run(self, flow: Flow[T]) -> T:
        async with self._lock:
            self._check()
            result = await drive_async(flow, self._transport)
            await self._transport.run(self._transport.sync_transport.settle)
            return result

    async def sync(self) -> SyncResult:
        self._check()
        replicator = self._transport.sync_transport.replicator
        return await self._transport.run(replicator.sync)

    @property
    def replica_index(self) -> int:
        return self._transport.sync_transport.replicator.applied_index


class AsyncReplicaTransport:
    """Runs a ``ReplicaTransport`` on one worker thread per connection."""

    def __init__(self, executor: concurrent.futures.ThreadPoolExecutor,
                 sync_transport: ReplicaTransport) -> None:
        self._executor = executor
        self.sync_transport = sync_transport

    async def run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def exchange(self, pipeline: Pipeline) -> Reply:
        return await self.run(lambda: self.sync_transport.exchange(pipeline))

    async def create_function(self, name: str, narg: int, func: Callable[..., Any] | None,
                              *, deterministic: bool = False) -> None:
        await self.run(lambda: self.sync_transport.create_function(
            name, narg, func, deterministic=deterministic))

    async def aclose(self) -> None:
        try:
            await self.run(self.sync_transport.close)
        finally:
            self._executor.shutdown(wait=False)


# --- opening ---------------------------------------------------------------------------

def _user_connection(path: Path, *, offline: bool, busy_timeout_s: float) -> apsw.Connection:
    """The application's connection: WAL, FULL sync for local writes, the guard."""
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    connection.set_busy_timeout(int(busy_timeout_s * 1000))
    connection.execute("PRAGMA journal_mode=WAL")
    # An acknowledged offline write must survive a power cut: it exists nowhere else.
    connection.execute("PRAGMA synchronous=" + ("FULL" if offline else "NORMAL"))
    connection.authorizer = ReplicaGuard(writes_allowed=offline)
    return connection


def build_transport(request: ReplicaRequest) -> ReplicaTransport:
    """Open (bootstrapping if needed) the replica ``request`` names."""
    path = Path(request.local.path)
    read_timeout_s = min(request.options.read_timeout_s, SYNC_READ_TIMEOUT_S_MAX)
    client = SyncClient(request.remote, connect_timeout_s=request.options.connect_timeout_s,
                        read_timeout_s=read_timeout_s, verify=request.options.verify)
    replicator = Replicator(path, client, sync_url=request.remote.base_url,
                            offline=request.offline, busy_timeout_s=request.busy_timeout_s)
    try:
        replicator.open()
    except BaseException:
        client.close()
        raise
    try:
        inner = _inner_transport(request, path, replicator)
    except BaseException:
        replicator.close()
        raise
    replicator.on_schema_change = inner.fast.schema_changed
    transport = ReplicaTransport(inner, replicator, request.options.read_timeout_s)
    if request.sync_interval_s is not None:
        replicator.start_background(request.sync_interval_s)
    return transport


def _inner_transport(request: ReplicaRequest, path: Path,
                     replicator: Replicator) -> OfflineDatabase | OnlineReplicaTransport:
    user = _user_connection(path, offline=request.offline,
                            busy_timeout_s=request.busy_timeout_s)
    if request.offline:
        capture = Capture(user, wall_ms=replicator.wall_ms, next_hlc=hlc.hlc_now)
        return OfflineDatabase.open_over(user, capture, replicator.commit_gate)
    remote: SyncTransport = HttpTransport(request.remote, request.options)
    return OnlineReplicaTransport(GuardedDatabase.over(user), user, remote,
                                  lambda: replicator.applied_index)


def open_replica_sync(request: ReplicaRequest, session: ClientSession, *,
                      check_same_thread: bool) -> ReplicaConnection:
    transport = build_transport(request)
    # Offline replicas keep their one local stream, like a local file; online ones
    # close streams after each call, like HTTP (the server's streams expire).
    session.keep_idle_stream = request.offline
    return ReplicaConnection(session, transport, check_same_thread=check_same_thread)


async def open_replica_async(request: ReplicaRequest,
                             session: ClientSession) -> AsyncReplicaConnection:
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="edgelite-replica")
    loop = asyncio.get_running_loop()
    try:
        transport = await loop.run_in_executor(executor, build_transport, request)
    except BaseException:
        executor.shutdown(wait=False)
        raise
    session.keep_idle_stream = request.offline
    return AsyncReplicaConnection(session, AsyncReplicaTransport(executor, transport))


class ReplicaBackend(LocalBackend):
    """The local backend ``edgelite.replica`` registers: local files and replicas."""

    def open_replica_sync(self, request: ReplicaRequest, session: ClientSession, *,
                          check_same_thread: bool) -> ReplicaConnection:
        return open_replica_sync(request, session, check_same_thread=check_same_thread)

    async def open_replica_async(self, request: ReplicaRequest,
                                 session: ClientSession) -> AsyncReplicaConnection:
        return await open_replica_async(request, session)
