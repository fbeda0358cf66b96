"""The edge of a node: aiohttp applications for the user port and the admin port.

``Server`` wires the node service, authentication, streams, metrics and the two APIs,
runs the idle-stream reaper, and owns start/stop. Nothing here runs SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from edgelite.auth import Authenticator
from edgelite.errors import OverloadedError
from edgelite.protocol import hrana
from edgelite.protocol.peer.messages import ForwardRequest, ForwardResponse
from edgelite.server.admin_api import AdminApi
from edgelite.server.changes_api import ChangesApi
from edgelite.server.http_api import EdgeConfig, UserApi
from edgelite.server.metrics import Metrics
from edgelite.server.responses import error_response
from edgelite.server.service import ClusterService, NodeService
from edgelite.server.streams import StreamRegistry
from edgelite.server.sync_api import SyncApi
from edgelite.server.ws_api import WsApi

logger = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "*",
}


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str | None = None
    admin_port: int | None = None
    admin_auth_key: str | None = None
    namespaces_enabled: bool = False
    self_url: str | None = None
    request_bytes_max: int = 8 * 1024 * 1024
    statements_per_request_max: int = 1000
    concurrent_requests_max: int = 512
    stream_idle_timeout_s: float = 30.0
    streams_max: int = 1024
    stored_sql_max: int = 50
    stored_sql_bytes_max: int = 5000
    default_consistency: str = "strong"


class Server:
    def __init__(self, node: NodeService, authenticator: Authenticator,
                 config: ServerConfig, cluster: ClusterService | None = None) -> None:
        self.node = node
        self.config = config
        self.cluster = cluster
        self.metrics = Metrics(node.applied_indexes,
                               cluster.metrics_snapshot if cluster is not None else None)
        self.streams = StreamRegistry(idle_timeout_s=config.stream_idle_timeout_s,
                                      streams_max=config.streams_max,
                                      stored_sql_max=config.stored_sql_max,
                                      stored_sql_bytes_max=config.stored_sql_bytes_max,
                                      node_id=cluster.node_id if cluster else "")
        limits = hrana.DecodeLimits(statements_max=config.statements_per_request_max)
        self.user_api = UserApi(node, authenticator, self.streams, self.metrics, EdgeConfig(
            namespaces_enabled=config.namespaces_enabled, self_url=config.self_url or None,
            statements_max=config.statements_per_request_max,
            default_consistency=config.default_consistency), cluster)
        self.ws_api = WsApi(node, authenticator, self.metrics,
                            namespaces_enabled=config.namespaces_enabled,
                            message_bytes_max=config.request_bytes_max,
                            streams_max=config.streams_max, limits=limits)
        self.ws_api.user_api = self.user_api
        self.admin_api = AdminApi(node, self.metrics, self.streams, config.admin_auth_key,
                                  cluster)
        sync = getattr(node, "sync", None)  # embedded replicas and change streams
        self.sync_api = SyncApi(sync, self.user_api, cluster)
        self.changes_api = ChangesApi(self.sync_api)
        if sync is not None:
            self.metrics.add_log_retention(sync.retained)
        if cluster is not None:
            cluster.serve_forwarded_with(self._serve_forwarded)
        self._in_flight = 0
        self._runners: list[web.AppRunner] = []
        self._reaper: asyncio.Task[None] | None = None
        self.bound_port: int | None = None
        self.bound_admin_port: int | None = None

    async def _serve_forwarded(self, request: ForwardRequest) -> ForwardResponse:
        if request.kind == "admin":
            return await self.admin_api.serve_forwarded(request)
        if request.kind == "sync":
            return await self.sync_api.serve_forwarded(request)
        return await self.user_api.serve_forwarded(request)

    def user_app(self) -> web.Application:
        app = web.Application(middlewares=[self._edge_middleware],
                              client_max_size=self.config.request_bytes_max)
        app.add_routes([web.get("/", self.ws_api.handle),
                        web.get("/metrics", self._metrics)])
        app.add_routes(self.user_api.routes())
        app.add_routes(self.sync_api.routes() + self.changes_api.routes())
        return app

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain",
                            charset="utf-8")

    @web.middleware
    async def _edge_middleware(self, request: web.Request,
                               handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS":
            # Echo the requested headers: "*" never covers Authorization (Fetch standard),
            # and browser clients send their token in it.
            asked = request.headers.get("Access-Control-Request-Headers", "")
            allowed = ", ".join(sorted({h.strip().lower() for h in asked.split(",")
                                        if h.strip()} | {"authorization", "content-type"}))
            headers = dict(_CORS_HEADERS, **{"Access-Control-Allow-Headers": allowed,
                                             "Access-Control-Max-Age": "600"})
            return web.Response(status=204, headers=headers)
        route = request.match_info.route.resource
        route_name = route.canonical if route is not None else "unmatched"
        namespace = "-"
        if self._in_flight >= self.config.concurrent_requests_max:
            response: web.StreamResponse = error_response(OverloadedError(
                "Too many concurrent requests (concurrent_requests_max)"))
        else:
            self._in_flight += 1
            try:
                namespace = self.user_api.namespace(request)
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
            except Exception as exc:
                response = error_response(exc)
            finally:
                self._in_flight -= 1
        if not isinstance(response, web.WebSocketResponse):
            response.headers.update(_CORS_HEADERS)
        self.metrics.count_request(route_name, response.status, namespace)
        return response

    async def start(self) -> None:
        runner = web.AppRunner(self.user_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        await site.start()
        self._runners.append(runner)
        self.bound_port = _bound_port(runner)
        if self.config.admin_port is not None:
            admin = web.AppRunner(self.admin_api.app(self.config.request_bytes_max),
                                  access_log=None, handle_signals=False)
            await admin.setup()
            await web.TCPSite(admin, self.config.admin_host or self.config.host,
                              self.config.admin_port).start()
            self._runners.append(admin)
            self.bound_admin_port = _bound_port(admin)
        self._reaper = asyncio.create_task(self._reap_idle_streams())

    async def _reap_idle_streams(self) -> None:
        interval_s = max(0.05, min(1.0, self.config.stream_idle_timeout_s / 4))
        while True:
            await asyncio.sleep(interval_s)
            for stream in self.streams.expire():
                self.metrics.open_streams.labels("http").dec()
                try:
                    await self.node.close_stream(stream.handle)
                except Exception:
                    logger.exception("closing an expired stream failed")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.ws_api.close_all()
        for runner in reversed(self._runners):
            await runner.cleanup()
        for stream in self.streams.drain():
            with contextlib.suppress(Exception):
                await self.node.close_stream(stream.handle)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("listener has no TCP address")
