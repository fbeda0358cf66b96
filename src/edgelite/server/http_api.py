"""The user-facing HTTP API: Hrana over HTTP (v1, v2, v3), legacy ``POST /``, probes.

Every SQL endpoint is split in two: the aiohttp handler turns an HTTP request into a
``Call`` (who, which database, which consistency) plus the body, and ``serve`` runs it
here or elsewhere in the cluster:

* a baton that belongs to another node's stream goes to that node;
* a request that needs the leader (a write on a follower: ``NotLeaderError``) goes to
  the leader, with the caller's identity (re-checked there) and the stream's stored SQL;
* everything else runs here.

A forwarded request arrives through ``serve_forwarded`` and runs through the very same
code, so a follower is a transparent proxy. Errors that fail a whole request are raised
and become responses in one place (``responses.error_response``).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Any

import msgspec
from aiohttp import web

from edgelite import __version__
from edgelite.auth import Access, Authenticator, Identity, build_authenticator
from edgelite.errors import (
    ClusterUnavailableError,
    EdgeliteError,
    NamespaceNotFoundError,
    NotLeaderError,
    ProtocolError,
)
from edgelite.protocol import hrana
from edgelite.protocol.hrana import messages as m
from edgelite.protocol.hrana.batons import baton_node_id
from edgelite.protocol.peer.messages import ForwardRequest, ForwardResponse
from edgelite.server.metrics import Metrics
from edgelite.server.namespaces import namespace_for
from edgelite.server.responses import error_response, json_response
from edgelite.server.service import ClusterService, NodeService
from edgelite.server.streams import HttpStream, StreamRegistry

CONSISTENCY_LEVELS = frozenset({"strong", "session", "eventual"})
PROBE_TEXT = "Hello, this is HTTP API v2 (Hrana over HTTP)"
ROUTES = {"/v2/pipeline": "v2", "/v3/pipeline": "v3", "/v3/cursor": "cursor",
          "/v1/execute": "v1_execute", "/v1/batch": "v1_batch", "/": "legacy"}


@dataclasses.dataclass(frozen=True, slots=True)
class EdgeConfig:
    namespaces_enabled: bool = False
    self_url: str | None = None
    statements_max: int = 1000
    default_consistency: str = "strong"


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """One request, wherever it entered the cluster."""

    kind: str
    namespace: str
    identity: Identity
    consistency: str
    bookmark: int | None
    request_id: str
    max_staleness_ms: int | None = None


@dataclasses.dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def response(self) -> web.Response:
        return web.Response(body=self.body, status=self.status,
                            content_type=self.content_type, headers=self.headers)


class _ForwardPayload(msgspec.Struct, frozen=True, array_like=True):
    body: bytes
    stored_sql: dict[int, str] = {}
    fresh_stream: bool = False  # the stream moved here: ignore the baton in ``body``


_payload_encoder = msgspec.msgpack.Encoder()
_payload_decoder = msgspec.msgpack.Decoder(_ForwardPayload)


class UserApi:
    def __init__(self, node: NodeService, authenticator: Authenticator,
                 streams: StreamRegistry, metrics: Metrics, config: EdgeConfig,
                 cluster: ClusterService | None = None) -> None:
        self.node = node
        self.authenticator = authenticator
        self.streams = streams
        self.metrics = metrics
        self.config = config
        self.cluster = cluster
        self.limits = hrana.DecodeLimits(statements_max=config.statements_max)
        self._namespace_authenticators: dict[str, Authenticator] = {}

    def routes(self) -> list[web.AbstractRouteDef]:
        routes = [web.post(path, self.http_entry) for path in ROUTES if path != "/"]
        routes += [web.post(f"/dev/{{namespace}}{path}", self.http_entry)
                   for path in ("/v2/pipeline", "/v3/pipeline", "/v3/cursor")]
        routes += [
            web.post("/", self.legacy_entry),
            web.get("/v1", self.probe_v1),
            web.get("/v2", self.probe),
            web.get("/v3", self.probe),
            web.get("/health", self.health),
            web.get("/version", self.version),
            web.get("/v1/requests/{request_id}", self.request_status),
        ]
        return routes

    # --- entering the cluster ----------------------------------------------------------------

    def namespace(self, request: web.Request) -> str:
        return namespace_for(request.headers, request.match_info.get("namespace"),
                             enabled=self.config.namespaces_enabled)

    def authenticator_for(self, namespace: str) -> Authenticator:
        """The namespace's own key (admin config ``jwt_key``) replaces the node's."""
        try:
            key = self.node.namespace_jwt_key(namespace)
        except EdgeliteError:
            key = None  # unknown namespace: reported once the request runs
        if not key:
            return self.authenticator
        cached = self._namespace_authenticators.get(key)
        if cached is None:
            cached = build_authenticator(jwt_key=key)
            if len(self._namespace_authenticators) > 1024:
                self._namespace_authenticators.clear()
            self._namespace_authenticators[key] = cached
        return cached

    def call_from(self, request: web.Request, kind: str) -> Call:
        namespace = self.namespace(request)
        identity = self.authenticator_for(namespace).authenticate_header(
            request.headers.get("Authorization"), time.time())
        consistency, bookmark = self.consistency_of(request.headers)
        max_staleness_ms = max_staleness_of(request.headers)
        request_id = request.headers.get("x-edgelite-request-id", "")
        if len(request_id) > 128:
            raise ProtocolError("x-edgelite-request-id is longer than 128 characters")
        if not request_id:
            # Named in "outcome unknown" errors, so any caller can ask what happened.
            request_id = secrets.token_hex(12)
        return Call(kind, namespace, identity, consistency, bookmark, request_id,
                    max_staleness_ms)

    def consistency_of(self, headers: Any) -> tuple[str, int | None]:
        level = headers.get("x-edgelite-consistency")
        if level is None:
            level = self.config.default_consistency
        level = level.strip().lower()
        if level not in CONSISTENCY_LEVELS:
            raise ProtocolError(f"x-edgelite-consistency must be one of strong, session, "
                                f"eventual (got {level[:40]!r})")
        bookmark = headers.get("x-edgelite-bookmark")
        if bookmark is not None and not bookmark.strip().isdigit():
            raise ProtocolError("x-edgelite-bookmark must be a replication index "
                                "(a non-negative integer)")
        return level, int(bookmark) if bookmark is not None else None

    async def http_entry(self, request: web.Request) -> web.Response:
        path = request.path
        if path.startswith("/dev/"):
            path = "/" + path.split("/", 3)[3]
        call = self.call_from(request, ROUTES[path])
        reply = await self.serve(call, await request.read())
        return reply.response()

    async def legacy_entry(self, request: web.Request) -> web.Response:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise web.HTTPNotFound()
        call = self.call_from(request, "legacy")
        try:
            reply = await self.serve(call, await request.read())
        except ProtocolError as exc:  # the legacy API answers 400 with a JSON body
            return web.Response(body=hrana.encode_legacy_error(exc.message), status=400,
                                content_type="application/json")
        return reply.response()

    # --- routing within the cluster --------------------------------------------------------

    async def serve(self, call: Call, body: bytes,
                    stored_sql: dict[int, str] | None = None) -> Reply:
        owner = self._stream_owner(call, body)
        if owner is not None:
            reply = await self._forward(call, body, owner, {})
            assert reply is not None
            return reply
        stored = stored_sql or {}
        fresh = False
        for _attempt in range(3):  # leadership may move here while we forward
            try:
                return await self._local(call, body, stored, fresh_stream=fresh)
            except _MovedToLeader as moved:
                reply = await self._forward(call, body, None, moved.stored_sql,
                                            fresh_stream=True)
                if reply is not None:
                    return reply
                stored, fresh = moved.stored_sql, True
        raise ClusterUnavailableError("leadership kept moving; retry the request")

    def _stream_owner(self, call: Call, body: bytes) -> str | None:
        """Another node's id when the request continues a stream held there."""
        if self.cluster is None or call.kind not in ("v2", "v3", "cursor"):
            return None
        baton = _peek_baton(body)
        if baton is None:
            return None
        owner = baton_node_id(baton)
        return owner if owner and owner != self.cluster.node_id else None

    async def _forward(self, call: Call, body: bytes, target: str | None,
                       stored_sql: dict[int, str], *,
                       fresh_stream: bool = False) -> Reply | None:
        cluster = self.cluster
        if cluster is None:
            raise ClusterUnavailableError("this node cannot forward requests")
        payload = _payload_encoder.encode(_ForwardPayload(body, stored_sql, fresh_stream))
        headers = {"consistency": call.consistency, "kind": call.kind,
                   "request_id": call.request_id or secrets.token_hex(8)}
        if call.bookmark is not None:
            headers["bookmark"] = str(call.bookmark)
        request = ForwardRequest(0, "http", call.namespace, call.identity.to_dict(), payload,
                                 headers)
        reply = await cluster.forward(request, target)
        if reply is None:
            return None
        self.metrics.forwarded.inc()
        out_headers = dict(reply.headers)
        content_type = out_headers.pop("content-type", "application/json")
        return Reply(reply.status, reply.payload, content_type, out_headers)

    async def serve_forwarded(self, request: ForwardRequest) -> ForwardResponse:
        """A request another node forwarded here (the leader, or a stream's owner)."""
        try:
            identity = Identity.from_dict(request.identity)
            payload = _payload_decoder.decode(request.payload)
            headers = request.headers
            bookmark = headers.get("bookmark")
            call = Call(headers.get("kind", "v2"), request.namespace, identity,
                        headers.get("consistency", "strong"),
                        int(bookmark) if bookmark else None, headers.get("request_id", ""))
            reply = await self._local(call, payload.body, dict(payload.stored_sql),
                                      forwarded=True, fresh_stream=payload.fresh_stream)
        except _MovedToLeader:
            reply = _reply_of(ClusterUnavailableError(
                "leadership moved while the request was forwarded; retry"))
        except (EdgeliteError, msgspec.DecodeError) as exc:
            reply = _reply_of(exc if isinstance(exc, EdgeliteError)
                              else ProtocolError(f"bad forwarded request: {exc}"))
        headers = dict(reply.headers)
        headers["content-type"] = reply.content_type
        return ForwardResponse(request.request_id, reply.status, reply.body, headers)

    # --- running here -----------------------------------------------------------------------

    @staticmethod
    def read_only(identity: Identity, namespace: str) -> bool:
        access = identity.access_to(namespace)
        if access is Access.NONE:
            raise NamespaceNotFoundError(f"Namespace `{namespace}` doesn't exist")
        return access < Access.WRITE

    async def _local(self, call: Call, body: bytes, stored_sql: dict[int, str], *,
                     forwarded: bool = False, fresh_stream: bool = False) -> Reply:
        if call.kind in ("v2", "v3"):
            return await self._pipeline(call, body, stored_sql, forwarded, fresh_stream)
        if call.kind == "cursor":
            return await self._cursor(call, body, stored_sql, forwarded, fresh_stream)
        if call.kind == "legacy":
            return await self._legacy(call, body)
        if call.kind == "status":
            request_id = body.decode("utf-8", "replace")
            index = await self.node.request_committed_at(call.namespace, request_id)
            return Reply(200, msgspec.json.encode({"request_id": request_id,
                                                   "committed": index is not None,
                                                   "index": index}))
        return await self._v1(call, body)

    async def _open(self, call: Call, baton: str | None,
                    stored_sql: dict[int, str]) -> tuple[HttpStream, bool]:
        """The stream a request runs on, and whether it was opened by this request."""
        if baton is None:
            handle = self.node.open_stream(call.namespace,
                                           read_only=self.read_only(call.identity,
                                                                    call.namespace))
            self.metrics.open_streams.labels("http").inc()
            stream = self.streams.open(call.namespace, handle)
            for sql_id, sql in stored_sql.items():
                stream.stored_sql.store(sql_id, sql)
            return stream, True
        stream = self.streams.acquire(baton)
        try:
            self.read_only(call.identity, stream.namespace)
        except BaseException:
            await self.destroy(stream)
            raise
        return stream, False

    async def destroy(self, stream: HttpStream) -> None:
        self.streams.discard(stream)
        self.metrics.open_streams.labels("http").dec()
        await self.node.close_stream(stream.handle)

    async def _run_on(self, stream: HttpStream, call: Call, forwarded: bool,
                      runner: Any) -> Any:
        """Run on a stream; a write refused here moves the request to the leader."""
        try:
            return await runner()
        except NotLeaderError:
            if forwarded or self.cluster is None or not self.node.is_autocommit(
                    stream.handle):
                await self.destroy(stream)
                raise
            stored = {i: stream.stored_sql.get(i) for i in stream.stored_sql}
            await self.destroy(stream)
            raise _MovedToLeader(stored) from None
        except BaseException:
            await self.destroy(stream)
            raise

    def _read(self, call: Call) -> Any:
        return self.node.read_level(call.consistency, call.bookmark, call.max_staleness_ms)

    def headers(self, index: int) -> dict[str, str]:
        return {"x-edgelite-replication-index": str(index)}

    @property
    def base_url(self) -> str | None:
        return self.config.self_url

    async def _pipeline(self, call: Call, raw: bytes, stored_sql: dict[int, str],
                        forwarded: bool, fresh_stream: bool) -> Reply:
        body = hrana.decode_pipeline_request(raw, version=3 if call.kind == "v3" else 2,
                                             limits=self.limits)
        stream, _opened = await self._open(call, None if fresh_stream else body.baton,
                                           stored_sql)
        executed = await self._run_on(stream, call, forwarded, lambda: self.node.pipeline(
            stream.handle, body.requests, stream.stored_sql, call.request_id,
            self._read(call)))
        run = executed.value
        stream.stored_sql = run.stored_sql
        if run.closed:
            await self.destroy(stream)
            baton = None
        else:
            baton = self.streams.release(stream, closed=False)
        self.metrics.observe_results(stream.namespace, run.results)
        payload = hrana.encode_pipeline_response(m.PipelineResponse(
            baton=baton, base_url=self.base_url, results=run.results))
        return Reply(200, payload, headers=self.headers(executed.replication_index))

    async def _cursor(self, call: Call, raw: bytes, stored_sql: dict[int, str],
                      forwarded: bool, fresh_stream: bool) -> Reply:
        body = hrana.decode_cursor_request(raw, limits=self.limits)
        stream, _opened = await self._open(call, None if fresh_stream else body.baton,
                                           stored_sql)
        executed = await self._run_on(stream, call, forwarded, lambda: self.node.cursor(
            stream.handle, body.batch, stream.stored_sql, self._read(call)))
        baton = self.streams.release(stream, closed=False)
        lines = [hrana.encode_cursor_head(m.CursorHead(baton=baton, base_url=self.base_url))]
        lines.extend(hrana.encode_cursor_entry(entry) for entry in executed.value)
        return Reply(200, b"".join(lines), "text/plain",
                     self.headers(executed.replication_index))

    async def _one_shot(self, call: Call, requests: list[Any]) -> Any:
        handle = self.node.open_stream(call.namespace,
                                       read_only=self.read_only(call.identity,
                                                                call.namespace))
        try:
            executed = await self.node.pipeline(handle, requests,
                                                hrana.SqlStore(count_max=0), call.request_id,
                                                self._read(call))
        except NotLeaderError:
            if self.cluster is None:
                raise
            raise _MovedToLeader({}) from None
        finally:
            await self.node.close_stream(handle)
        self.metrics.observe_results(call.namespace, executed.value.results)
        return executed

    async def _v1(self, call: Call, raw: bytes) -> Reply:
        if call.kind == "v1_execute":
            body = hrana.decode_v1_execute_request(raw)
            hrana.validate_stmt(body.stmt, 1)
            executed = await self._one_shot(call, [m.ExecuteRequest(body.stmt)])
        else:
            batch = hrana.decode_v1_batch_request(raw, limits=self.limits)
            executed = await self._one_shot(call, [m.BatchRequest(batch.batch)])
        result = executed.value.results[0]
        headers = self.headers(executed.replication_index)
        if isinstance(result, m.StreamResultError):
            status = hrana.v1_http_status_for_code(result.error.code or "") \
                if call.kind == "v1_execute" else 500
            return Reply(status, hrana.encode_error_body(result.error), headers=headers)
        if call.kind == "v1_execute":
            payload = hrana.encode_v1_execute_response(m.V1ExecuteResponse(
                result.response.result))
        else:
            payload = hrana.encode_v1_batch_response(m.V1BatchResponse(
                result.response.result))
        return Reply(200, payload, headers=headers)

    async def _legacy(self, call: Call, raw: bytes) -> Reply:
        body = hrana.decode_legacy_request(raw, limits=self.limits)
        handle = self.node.open_stream(call.namespace,
                                       read_only=self.read_only(call.identity,
                                                                call.namespace))
        try:
            executed = await self.node.legacy(handle, body, self._read(call))
        except NotLeaderError:
            if self.cluster is None:
                raise
            raise _MovedToLeader({}) from None
        finally:
            await self.node.close_stream(handle)
        return Reply(200, hrana.encode_legacy_response(executed.value),
                     headers=self.headers(executed.replication_index))

    async def request_status(self, request: web.Request) -> web.Response:
        """Did the write with this request id commit? (after an outcome-unknown error)"""
        call = self.call_from(request, "status")
        self.read_only(call.identity, call.namespace)
        request_id = request.match_info["request_id"]
        if self.cluster is not None and not self.node.is_leader():
            reply = await self._forward_status(call, request_id)
            if reply is not None:
                return reply.response()
        index = await self.node.request_committed_at(call.namespace, request_id)
        body = {"request_id": request_id, "committed": index is not None, "index": index}
        return json_response(body)

    async def _forward_status(self, call: Call, request_id: str) -> Reply | None:
        payload = _payload_encoder.encode(_ForwardPayload(request_id.encode()))
        request = ForwardRequest(0, "http", call.namespace, call.identity.to_dict(), payload,
                                 {"kind": "status", "consistency": "strong"})
        assert self.cluster is not None
        reply = await self.cluster.forward(request, None)
        if reply is None:
            return None
        return Reply(reply.status, reply.payload)

    # --- probes ------------------------------------------------------------------------------

    async def probe(self, _request: web.Request) -> web.Response:
        return web.Response(text=PROBE_TEXT, content_type="text/plain")

    async def probe_v1(self, _request: web.Request) -> web.Response:
        return web.Response(text="This is edgelite's sqld-compatible HTTP API v1",
                            content_type="text/plain")

    async def health(self, _request: web.Request) -> web.Response:
        failure = self.cluster.failure() if self.cluster is not None else None
        if failure is not None:  # a supervisor must see it: the process exits soon
            return web.Response(status=503, text=f"this member stopped working: {failure}")
        return web.Response(status=200)

    async def version(self, _request: web.Request) -> web.Response:
        return web.Response(text=f"edgelite {__version__}", content_type="text/plain")

    async def not_found(self, _request: web.Request) -> web.Response:
        return json_response({}, 404)


class _MovedToLeader(Exception):
    """The request needs the leader; carries the stored SQL of the stream it left."""

    def __init__(self, stored_sql: dict[int, str]) -> None:
        super().__init__("needs the leader")
        self.stored_sql = stored_sql


class _BatonOnly(msgspec.Struct):
    baton: str | None = None


_baton_decoder = msgspec.json.Decoder(_BatonOnly)


def _peek_baton(body: bytes) -> str | None:
    try:
        return _baton_decoder.decode(body).baton
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None  # the full decoder reports the problem


def _reply_of(exc: EdgeliteError) -> Reply:
    response = error_response(exc)
    body = response.body if isinstance(response.body, bytes) else b""
    return Reply(response.status, body, response.content_type or "application/json")


MAX_STALENESS_MS_MAX = 86_400_000


def max_staleness_of(headers: Any) -> int | None:
    """``x-edgelite-max-staleness-ms``: how old an eventual or session read may be."""
    value = headers.get("x-edgelite-max-staleness-ms")
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or int(text) > MAX_STALENESS_MS_MAX:
        raise ProtocolError("x-edgelite-max-staleness-ms must be a number of milliseconds "
                            f"from 0 to {MAX_STALENESS_MS_MAX} (got {text[:40]!r})")
    return int(text)


__all__ = ["Call", "EdgeConfig", "Reply", "UserApi", "max_staleness_of"]
