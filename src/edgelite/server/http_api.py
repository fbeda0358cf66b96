"""The user-facing HTTP API: Hrana over HTTP (v1, v2, v3), legacy ``POST /``, probes.

Each handler decodes, authenticates, calls one node method, encodes. Errors that fail a
whole request are raised and turned into responses by the middleware
(``responses.error_response``); statement errors travel inside results.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web

from edgelite import __version__
from edgelite.auth import Access, Authenticator, Identity
from edgelite.errors import NamespaceNotFoundError, ProtocolError
from edgelite.protocol import hrana
from edgelite.protocol.hrana import messages as m
from edgelite.server.metrics import Metrics
from edgelite.server.namespaces import namespace_for
from edgelite.server.responses import json_response
from edgelite.server.service import NodeService
from edgelite.server.streams import HttpStream, StreamRegistry

CONSISTENCY_LEVELS = frozenset({"strong", "session", "eventual"})
PROBE_TEXT = "Hello, this is HTTP API v2 (Hrana over HTTP)"


@dataclasses.dataclass(frozen=True, slots=True)
class EdgeConfig:
    namespaces_enabled: bool = False
    self_url: str | None = None
    statements_max: int = 1000
    node_id: str = ""


class UserApi:
    def __init__(self, node: NodeService, authenticator: Authenticator,
                 streams: StreamRegistry, metrics: Metrics, config: EdgeConfig) -> None:
        self.node = node
        self.authenticator = authenticator
        self.streams = streams
        self.metrics = metrics
        self.config = config
        self.limits = hrana.DecodeLimits(statements_max=config.statements_max)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.post("/v2/pipeline", self.pipeline_v2),
            web.post("/v3/pipeline", self.pipeline_v3),
            web.post("/v3/cursor", self.cursor),
            web.post("/dev/{namespace}/v2/pipeline", self.pipeline_v2),
            web.post("/dev/{namespace}/v3/pipeline", self.pipeline_v3),
            web.post("/dev/{namespace}/v3/cursor", self.cursor),
            web.post("/v1/execute", self.v1_execute),
            web.post("/v1/batch", self.v1_batch),
            web.get("/v1", self.probe_v1),
            web.get("/v2", self.probe),
            web.get("/v3", self.probe),
            web.get("/health", self.health),
            web.get("/version", self.version),
            web.post("/", self.legacy),
        ]

    # --- shared steps ----------------------------------------------------------------------

    def namespace(self, request: web.Request) -> str:
        return namespace_for(request.headers, request.match_info.get("namespace"),
                             enabled=self.config.namespaces_enabled)

    def identify(self, request: web.Request) -> Identity:
        return self.authenticator.authenticate_header(request.headers.get("Authorization"),
                                                      time.time())

    @staticmethod
    def read_only(identity: Identity, namespace: str) -> bool:
        access = identity.access_to(namespace)
        if access is Access.NONE:
            raise NamespaceNotFoundError(f"Namespace `{namespace}` doesn't exist")
        return access < Access.WRITE

    @staticmethod
    def check_consistency(request: web.Request) -> None:
        level = request.headers.get("x-edgelite-consistency")
        if level is not None and level.strip().lower() not in CONSISTENCY_LEVELS:
            raise ProtocolError(f"x-edgelite-consistency must be one of strong, session, "
                                f"eventual (got {level[:40]!r})")
        bookmark = request.headers.get("x-edgelite-bookmark")
        if bookmark is not None and not bookmark.strip().isdigit():
            raise ProtocolError("x-edgelite-bookmark must be a replication index "
                                "(a non-negative integer)")

    async def stream_for(self, request: web.Request, baton: str | None,
                         identity: Identity) -> HttpStream:
        if baton is None:
            namespace = self.namespace(request)
            handle = self.node.open_stream(namespace,
                                           read_only=self.read_only(identity, namespace))
            self.metrics.open_streams.labels("http").inc()
            return self.streams.open(namespace, handle)
        stream = self.streams.acquire(baton)
        try:
            self.read_only(identity, stream.namespace)
        except BaseException:
            await self.destroy(stream)
            raise
        return stream

    async def destroy(self, stream: HttpStream) -> None:
        self.streams.discard(stream)
        self.metrics.open_streams.labels("http").dec()
        await self.node.close_stream(stream.handle)

    def headers(self, index: int) -> dict[str, str]:
        return {"x-edgelite-replication-index": str(index)}

    # --- Hrana 2 / 3 -------------------------------------------------------------------------

    async def pipeline_v2(self, request: web.Request) -> web.Response:
        return await self._pipeline(request, 2)

    async def pipeline_v3(self, request: web.Request) -> web.Response:
        return await self._pipeline(request, 3)

    async def _pipeline(self, request: web.Request, version: int) -> web.Response:
        identity = self.identify(request)
        self.check_consistency(request)
        body = hrana.decode_pipeline_request(await request.read(), version=version,
                                             limits=self.limits)
        stream = await self.stream_for(request, body.baton, identity)
        try:
            executed = await self.node.pipeline(stream.handle, body.requests,
                                                stream.stored_sql)
        except BaseException:
            await self.destroy(stream)
            raise
        run = executed.value
        stream.stored_sql = run.stored_sql
        if run.closed:
            await self.destroy(stream)
            baton = None
        else:
            baton = self.streams.release(stream, closed=False)
        self.metrics.observe_results(stream.namespace, run.results)
        payload = hrana.encode_pipeline_response(m.PipelineResponse(
            baton=baton, base_url=self.config.self_url, results=run.results))
        return web.Response(body=payload, content_type="application/json",
                            headers=self.headers(executed.replication_index))

    async def cursor(self, request: web.Request) -> web.Response:
        identity = self.identify(request)
        self.check_consistency(request)
        body = hrana.decode_cursor_request(await request.read(), limits=self.limits)
        stream = await self.stream_for(request, body.baton, identity)
        try:
            executed = await self.node.cursor(stream.handle, body.batch, stream.stored_sql)
        except BaseException:
            await self.destroy(stream)
            raise
        baton = self.streams.release(stream, closed=False)
        lines = [hrana.encode_cursor_head(m.CursorHead(baton=baton,
                                                       base_url=self.config.self_url))]
        lines.extend(hrana.encode_cursor_entry(entry) for entry in executed.value)
        return web.Response(body=b"".join(lines), content_type="text/plain",
                            headers=self.headers(executed.replication_index))

    # --- stateless APIs ----------------------------------------------------------------------

    async def _one_shot(self, request: web.Request, requests: list[Any]) -> Any:
        identity = self.identify(request)
        self.check_consistency(request)
        namespace = self.namespace(request)
        handle = self.node.open_stream(namespace, read_only=self.read_only(identity, namespace))
        store = hrana.SqlStore(count_max=0)
        try:
            executed = await self.node.pipeline(handle, requests, store)
        finally:
            await self.node.close_stream(handle)
        self.metrics.observe_results(namespace, executed.value.results)
        return executed

    async def v1_execute(self, request: web.Request) -> web.Response:
        body = hrana.decode_v1_execute_request(await request.read())
        hrana.validate_stmt(body.stmt, 1)
        executed = await self._one_shot(request, [m.ExecuteRequest(body.stmt)])
        result = executed.value.results[0]
        headers = self.headers(executed.replication_index)
        if isinstance(result, m.StreamResultError):
            status = hrana.v1_http_status_for_code(result.error.code or "")
            return web.Response(body=hrana.encode_error_body(result.error), status=status,
                                content_type="application/json", headers=headers)
        response = m.V1ExecuteResponse(result.response.result)
        return web.Response(body=hrana.encode_v1_execute_response(response),
                            content_type="application/json", headers=headers)

    async def v1_batch(self, request: web.Request) -> web.Response:
        body = hrana.decode_v1_batch_request(await request.read(), limits=self.limits)
        executed = await self._one_shot(request, [m.BatchRequest(body.batch)])
        result = executed.value.results[0]
        if isinstance(result, m.StreamResultError):
            return web.Response(body=hrana.encode_error_body(result.error), status=500,
                                content_type="application/json")
        response = m.V1BatchResponse(result.response.result)
        return web.Response(body=hrana.encode_v1_batch_response(response),
                            content_type="application/json",
                            headers=self.headers(executed.replication_index))

    async def legacy(self, request: web.Request) -> web.Response:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise web.HTTPNotFound()
        identity = self.identify(request)
        namespace = self.namespace(request)
        try:
            body = hrana.decode_legacy_request(await request.read(), limits=self.limits)
            handle = self.node.open_stream(namespace,
                                           read_only=self.read_only(identity, namespace))
            try:
                executed = await self.node.legacy(handle, body)
            finally:
                await self.node.close_stream(handle)
        except ProtocolError as exc:  # the legacy API answers 400 with a JSON body
            return web.Response(body=hrana.encode_legacy_error(exc.message), status=400,
                                content_type="application/json")
        return web.Response(body=hrana.encode_legacy_response(executed.value),
                            content_type="application/json",
                            headers=self.headers(executed.replication_index))

    # --- probes ------------------------------------------------------------------------------

    async def probe(self, _request: web.Request) -> web.Response:
        return web.Response(text=PROBE_TEXT, content_type="text/plain")

    async def probe_v1(self, _request: web.Request) -> web.Response:
        return web.Response(text="This is edgelite's sqld-compatible HTTP API v1",
                            content_type="text/plain")

    async def health(self, _request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def version(self, _request: web.Request) -> web.Response:
        return web.Response(text=f"edgelite {__version__}", content_type="text/plain")

    async def not_found(self, _request: web.Request) -> web.Response:
        return json_response({}, 404)
