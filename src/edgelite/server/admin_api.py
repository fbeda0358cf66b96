"""The admin API, on its own listener (protocol.md §7.2, sqld-compatible routes).

Optional auth: ``--admin-auth-key KEY`` requires ``Authorization: Basic KEY`` (compared
verbatim, in constant time), else 401 with an empty body, as sqld does.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from edgelite.errors import ProtocolError
from edgelite.server.metrics import Metrics
from edgelite.server.responses import error_response, json_response
from edgelite.server.service import NodeService
from edgelite.server.streams import StreamRegistry

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminApi:
    def __init__(self, node: NodeService, metrics: Metrics, streams: StreamRegistry,
                 auth_key: str | None) -> None:
        self.node = node
        self.metrics = metrics
        self.streams = streams
        self.auth_key = auth_key

    def app(self, client_max_size: int) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=client_max_size)
        app.add_routes([
            web.get("/", self.welcome),
            web.get("/v1/namespaces", self.list_namespaces),
            web.post("/v1/namespaces/{ns}/create", self.create),
            web.delete("/v1/namespaces/{ns}", self.delete),
            web.post("/v1/namespaces/{ns}/fork/{to}", self.fork),
            web.get("/v1/namespaces/{ns}/config", self.get_config),
            web.post("/v1/namespaces/{ns}/config", self.set_config),
            web.get("/v1/namespaces/{ns}/stats", self.stats),
            web.get("/v1/diagnostics", self.diagnostics),
            web.get("/metrics", self.render_metrics),
        ])
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.auth_key is not None:
            given = request.headers.get("Authorization", "")
            expected = f"Basic {self.auth_key}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return web.Response(status=401)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            return error_response(exc)

    async def welcome(self, _request: web.Request) -> web.Response:
        return web.Response(text="Welcome to the edgelite admin API")

    async def list_namespaces(self, _request: web.Request) -> web.Response:
        return json_response({"namespaces": [{"name": n} for n in self.node.namespaces()]})

    async def create(self, request: web.Request) -> web.Response:
        await self.node.create_namespace(request.match_info["ns"],
                                         await _json_body(request, required=True))
        return web.Response(status=200)

    async def delete(self, request: web.Request) -> web.Response:
        await self.node.delete_namespace(request.match_info["ns"])
        return web.Response(status=200)

    async def fork(self, request: web.Request) -> web.Response:
        body = await _json_body(request, required=False)
        if body.get("timestamp") is not None:
            raise ProtocolError("point-in-time fork needs backups, which this server does "
                                "not keep; fork without a timestamp")
        await self.node.fork_namespace(request.match_info["ns"], request.match_info["to"])
        return web.Response(status=200)

    async def get_config(self, request: web.Request) -> web.Response:
        return json_response(self.node.namespace_config(request.match_info["ns"]))

    async def set_config(self, request: web.Request) -> web.Response:
        await self.node.set_namespace_config(request.match_info["ns"],
                                             await _json_body(request, required=True))
        return web.Response(status=200)

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(self.node.namespace_stats(request.match_info["ns"]))

    async def diagnostics(self, _request: web.Request) -> web.Response:
        return json_response([f"stream {i}: open" for i in range(len(self.streams))])

    async def render_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(),
                            content_type="text/plain", charset="utf-8")


async def _json_body(request: web.Request, *, required: bool) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ProtocolError("a JSON object body is required (`{}` is fine)")
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError("the body must be a JSON object")
    return body
