"""Embedded-replica sync over HTTP: ``/v1/sync/info``, ``/snapshot``, ``/pull``, ``/push``.

Authentication and namespace selection are Hrana's (``UserApi``): a read-only token may
read info, snapshots and pulls (and the change stream, ``changes_api``), only a token
that may write may push. Any member serves what it has applied; a push is a write, so a
follower forwards it to the leader over the peer connection (kind ``sync``) with the
caller's identity, which the leader checks again.

Every answer is bounded (``*_MAX`` below) and every error is JSON
``{"error", "message", "code"}`` naming what was wrong. docs/design/sync.md has the
wire formats.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Protocol

import msgspec
from aiohttp import web

from edgelite.auth import Access, Identity
from edgelite.errors import (
    AlreadyAppliedError,
    ClusterUnavailableError,
    DatabaseMismatchError,
    EdgeliteError,
    NamespaceNotFoundError,
    NotLeaderError,
    PermissionDeniedError,
    ProtocolError,
    SnapshotRequiredError,
    SqlError,
)
from edgelite.protocol.peer.messages import ForwardRequest, ForwardResponse
from edgelite.server.responses import error_body, error_response, json_response
from edgelite.server.service import ClusterService

WAIT_MS_MAX = 60_000
ENTRIES_DEFAULT = 1_000
ENTRIES_MAX = 10_000
BYTES_DEFAULT = 4 << 20
BYTES_MAX = 16 << 20
SNAPSHOT_CHUNK_BYTES = 256 << 10
REQUEST_ID_CHARS_MAX = 128
MSGPACK = "application/vnd.msgpack"
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_msgpack = msgspec.msgpack.Encoder()


class SnapshotLike(Protocol):
    @property
    def path(self) -> Any: ...
    @property
    def index(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def database_id(self) -> str: ...
    def discard(self) -> None: ...


class SyncNode(Protocol):
    """What the sync endpoints need of the node (``cluster.sync_service.SyncService``)."""

    async def info(self, namespace: str) -> dict[str, Any]: ...
    async def snapshot(self, namespace: str) -> SnapshotLike: ...
    async def pull(self, namespace: str, since: int, *, wait_s: float, entries_max: int,
                   bytes_max: int) -> Any: ...
    async def push(self, namespace: str, request_id: str, body: bytes) -> dict[str, Any]: ...
    def change_reader(self, namespace: str, tables: frozenset[str] | None) -> Any: ...


class Caller(Protocol):
    """Hrana's namespace selection and authentication (``http_api.UserApi``)."""

    def namespace(self, request: web.Request) -> str: ...
    def authenticator_for(self, namespace: str) -> Any: ...


def sync_error(exc: BaseException) -> web.Response:
    """Every sync error as JSON (the Hrana edge answers protocol errors in text)."""
    if isinstance(exc, SnapshotRequiredError):
        body: dict[str, Any] = {**error_body(exc.message, exc.message, exc.code),
                                "retained_from_index": exc.retained_from_index}
        return json_response(body, 410)
    if isinstance(exc, AlreadyAppliedError):
        body = {**error_body(exc.message, exc.message, exc.code), "index": exc.index}
        return json_response(body, 409, headers={
            "x-edgelite-replication-index": str(exc.index)})
    if isinstance(exc, DatabaseMismatchError):
        return json_response(error_body(exc.message, exc.message, exc.code), 409)
    if isinstance(exc, ProtocolError | SqlError):
        return json_response(error_body(exc.message, exc.message, exc.code), 400)
    return error_response(exc)


class SyncApi:
    def __init__(self, sync: SyncNode | None, caller: Caller,
                 cluster: ClusterService | None = None) -> None:
        self.sync = sync
        self.caller = caller
        self.cluster = cluster

    def routes(self) -> list[web.AbstractRouteDef]:
        pairs = [("GET", "/v1/sync/info", self.info),
                 ("GET", "/v1/sync/snapshot", self.snapshot),
                 ("GET", "/v1/sync/pull", self.pull),
                 ("POST", "/v1/sync/push", self.push)]
        routes: list[web.AbstractRouteDef] = [
            web.route(method, path, self._guarded(handler)) for method, path, handler in pairs]
        routes += [web.route(method, "/dev/{namespace}" + path, self._guarded(handler))
                   for method, path, handler in pairs]
        return routes

    def _guarded(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                response: web.StreamResponse = await handler(request)
                return response
            except (ConnectionResetError, asyncio.CancelledError, web.HTTPException):
                raise
            except Exception as exc:
                return sync_error(exc)
        return guarded

    def node(self) -> SyncNode:
        if self.sync is None:
            raise web.HTTPNotFound()
        return self.sync

    def identify(self, request: web.Request, *, write: bool) -> tuple[str, Identity]:
        """The namespace and the caller, checked like Hrana checks them."""
        namespace = self.caller.namespace(request)
        identity = self.caller.authenticator_for(namespace).authenticate_header(
            request.headers.get("Authorization"), time.time())
        check_access(identity, namespace, write=write)
        return namespace, identity

    # --- reads ----------------------------------------------------------------------------

    async def info(self, request: web.Request) -> web.Response:
        namespace, _ = self.identify(request, write=False)
        return json_response(await self.node().info(namespace))

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        namespace, _ = self.identify(request, write=False)
        snapshot = await self.node().snapshot(namespace)
        try:
            response = web.StreamResponse(headers={
                "content-type": "application/vnd.sqlite3",
                "x-edgelite-database-id": snapshot.database_id,
                "x-edgelite-snapshot-index": str(snapshot.index),
                "x-edgelite-replication-index": str(snapshot.index),
                "x-edgelite-sha256": snapshot.sha256})
            response.content_length = snapshot.size_bytes
            await response.prepare(request)
            with open(snapshot.path, "rb") as handle:
                while chunk := await asyncio.to_thread(handle.read, SNAPSHOT_CHUNK_BYTES):
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            await asyncio.to_thread(snapshot.discard)

    async def pull(self, request: web.Request) -> web.Response:
        namespace, _ = self.identify(request, write=False)
        query = request.query
        since = query_int(query, "since", None, 0, 1 << 62)
        wait_ms = query_int(query, "wait_ms", 0, 0, WAIT_MS_MAX)
        entries_max = query_int(query, "max_entries", ENTRIES_DEFAULT, 1, ENTRIES_MAX)
        bytes_max = query_int(query, "max_bytes", BYTES_DEFAULT, 1, BYTES_MAX)
        result = await self.node().pull(namespace, since, wait_s=wait_ms / 1000,
                                        entries_max=entries_max, bytes_max=bytes_max)
        body = {"database_id": result.database_id,
                "entries": [[e.index, e.committed_at_ms, e.effect, list(e.request_ids)]
                            for e in result.entries],
                "applied_index": result.applied_index, "more": result.more}
        return web.Response(body=_msgpack.encode(body), content_type=MSGPACK, headers={
            "x-edgelite-replication-index": str(result.applied_index)})

    # --- push (a write: the leader runs it) ---------------------------------------------------

    async def push(self, request: web.Request) -> web.Response:
        namespace, identity = self.identify(request, write=True)
        request_id = request.headers.get("x-edgelite-request-id", "")
        if not _REQUEST_ID.match(request_id):
            raise ProtocolError("POST /v1/sync/push needs the header x-edgelite-request-id "
                                f"(the idempotency key: 1-{REQUEST_ID_CHARS_MAX} visible "
                                "ASCII characters)")
        body = await request.read()
        status, payload, headers = await self.run_push(namespace, identity, request_id, body)
        return web.Response(status=status, body=payload, content_type="application/json",
                            headers=headers)

    async def run_push(self, namespace: str, identity: Identity, request_id: str,
                       body: bytes, *, forwarded: bool = False) \
            -> tuple[int, bytes, dict[str, str]]:
        for _attempt in range(3):  # leadership may move here while we forward
            try:
                result = await self.node().push(namespace, request_id, body)
            except NotLeaderError:
                if forwarded or self.cluster is None:
                    raise
                reply = await self.cluster.forward(ForwardRequest(
                    0, "sync", namespace, identity.to_dict(), body,
                    {"op": "push", "request_id": request_id}), None)
                if reply is None:
                    continue
                return reply.status, reply.payload, dict(reply.headers)
            headers = {"x-edgelite-replication-index": str(result["index"])}
            return 200, msgspec.json.encode(result), headers
        raise ClusterUnavailableError("leadership kept moving; retry the push")

    async def serve_forwarded(self, request: ForwardRequest) -> ForwardResponse:
        """A push a follower forwarded here (this node leads, or believed to)."""
        try:
            identity = Identity.from_dict(request.identity)
            check_access(identity, request.namespace, write=True)
            if request.headers.get("op") != "push":
                raise ProtocolError(f"unknown forwarded sync operation "
                                    f"{request.headers.get('op')!r}")
            status, payload, headers = await self.run_push(
                request.namespace, identity, request.headers.get("request_id", ""),
                request.payload, forwarded=True)
        except EdgeliteError as exc:
            response = sync_error(exc)
            status = response.status
            payload = response.body if isinstance(response.body, bytes) else b""
            headers = {k: v for k, v in response.headers.items()
                       if k.lower().startswith("x-edgelite")}
        return ForwardResponse(request.request_id, status, payload, headers)


def check_access(identity: Identity, namespace: str, *, write: bool) -> None:
    access = identity.access_to(namespace)
    if access is Access.NONE:
        raise NamespaceNotFoundError(f"Namespace `{namespace}` doesn't exist")
    if write and access < Access.WRITE:
        raise PermissionDeniedError(
            f"Authorization forbidden: this token may only read namespace {namespace}; "
            "pushing changes needs write access")


def query_int(query: Any, name: str, default: int | None, low: int, high: int) -> int:
    """An integer query parameter within ``low..high`` (required when no default)."""
    raw = query.get(name)
    if raw is None:
        if default is None:
            raise ProtocolError(f"query parameter `{name}` is required")
        return default
    text = raw.strip()
    if not text.isdigit() or len(text) > 19:
        raise ProtocolError(f"query parameter `{name}` must be a non-negative integer "
                            f"(got {raw[:40]!r})")
    value = int(text)
    if not low <= value <= high:
        raise ProtocolError(f"query parameter `{name}` must be between {low} and {high} "
                            f"(got {value})")
    return value

__all__ = ["SyncApi", "SyncNode", "check_access", "query_int", "sync_error"]
