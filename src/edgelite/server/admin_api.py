"""The admin API, on its own listener (protocol.md §7.2 routes, plus cluster routes).

Optional auth: ``--admin-auth-key KEY`` requires ``Authorization: Basic KEY`` (compared
verbatim, in constant time), else 401 with an empty body, as sqld does.

Every operation goes through ``operate(method, path, body)``, so a follower can hand an
operation that needs the leader (catalog and membership changes) to the leader over the
peer connection and return its answer unchanged.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from edgelite.auth import parse_public_keys
from edgelite.errors import ConfigError, EdgeliteError, NotLeaderError, ProtocolError
from edgelite.protocol.peer.messages import ForwardRequest, ForwardResponse
from edgelite.server.metrics import Metrics
from edgelite.server.responses import error_response
from edgelite.server.service import ClusterService, NodeService
from edgelite.server.streams import StreamRegistry

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Operation = Callable[[re.Match[str], dict[str, Any]], Awaitable[Any]]
_json = msgspec.json.Encoder()


class _AdminCall(msgspec.Struct, frozen=True, array_like=True):
    method: str
    path: str
    body: bytes


class AdminApi:
    def __init__(self, node: NodeService, metrics: Metrics, streams: StreamRegistry,
                 auth_key: str | None, cluster: ClusterService | None = None) -> None:
        self.node = node
        self.metrics = metrics
        self.streams = streams
        self.auth_key = auth_key
        self.cluster = cluster
        ns = r"(?P<ns>[^/]+)"
        member = r"(?P<member>[^/]+)"
        self._operations: list[tuple[str, re.Pattern[str], Operation]] = [
            ("GET", re.compile(r"/v1/namespaces"), self.list_namespaces),
            ("POST", re.compile(rf"/v1/namespaces/{ns}/create"), self.create),
            ("DELETE", re.compile(rf"/v1/namespaces/{ns}"), self.delete),
            ("POST", re.compile(rf"/v1/namespaces/{ns}/fork/(?P<to>[^/]+)"), self.fork),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/config"), self.get_config),
            ("POST", re.compile(rf"/v1/namespaces/{ns}/config"), self.set_config),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/stats"), self.stats),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/hash"), self.content_hash),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/conflict-policy"), self.policies),
            ("POST", re.compile(rf"/v1/namespaces/{ns}/conflict-policy"), self.set_policy),
            ("GET", re.compile(r"/v1/diagnostics"), self.diagnostics),
            ("GET", re.compile(r"/v1/cluster"), self.cluster_status),
            ("POST", re.compile(r"/v1/cluster/join"), self.join),
            ("POST", re.compile(r"/v1/cluster/members"), self.add_member),
            ("DELETE", re.compile(rf"/v1/cluster/members/{member}"), self.remove_member),
            ("POST", re.compile(rf"/v1/cluster/members/{member}/promote"), self.promote),
            ("POST", re.compile(r"/v1/cluster/transfer"), self.transfer),
        ]

    def app(self, client_max_size: int) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=client_max_size)
        app.router.add_get("/", self.welcome)
        app.router.add_get("/metrics", self.render_metrics)
        app.router.add_route("*", "/{tail:.+}", self.entry)
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

    async def entry(self, request: web.Request) -> web.Response:
        status, body = await self.operate(request.method, request.path, await request.read())
        return _response(status, body)

    async def operate(self, method: str, path: str, raw: bytes, *,
                      forwarded: bool = False) -> tuple[int, bytes]:
        """Run one admin operation here, or on the leader if it must run there."""
        for verb, pattern, operation in self._operations:
            match = pattern.fullmatch(path)
            if match is None or verb != method:
                continue
            try:
                result = await operation(match, _json_body(raw))
            except NotLeaderError:
                if forwarded or self.cluster is None:
                    raise
                return await self._forward(method, path, raw)
            return 200, b"" if result is None else _json.encode(result)
        raise web.HTTPNotFound()

    async def _forward(self, method: str, path: str, raw: bytes) -> tuple[int, bytes]:
        assert self.cluster is not None
        payload = msgspec.msgpack.encode(_AdminCall(method, path, raw))
        reply = await self.cluster.forward(ForwardRequest(0, "admin", "", {}, payload, {}),
                                           None)
        if reply is None:  # this node leads now
            return await self.operate(method, path, raw, forwarded=True)
        return reply.status, reply.payload

    async def serve_forwarded(self, request: ForwardRequest) -> ForwardResponse:
        try:
            call = msgspec.msgpack.decode(request.payload, type=_AdminCall)
            status, body = await self.operate(call.method, call.path, call.body,
                                              forwarded=True)
        except web.HTTPNotFound:
            status, body = 404, b""
        except (EdgeliteError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            error = exc if isinstance(exc, EdgeliteError) else ProtocolError(str(exc))
            response = error_response(error)
            status = response.status
            body = response.body if isinstance(response.body, bytes) else b""
        return ForwardResponse(request.request_id, status, body, {})

    # --- operations ----------------------------------------------------------------------

    async def welcome(self, _request: web.Request) -> web.Response:
        return web.Response(text="Welcome to the edgelite admin API")

    async def list_namespaces(self, _match: re.Match[str], _body: dict[str, Any]) -> Any:
        return {"namespaces": [{"name": n} for n in self.node.namespaces()]}

    async def create(self, match: re.Match[str], body: dict[str, Any]) -> None:
        _check_jwt_key(body)
        await self.node.create_namespace(match["ns"], body)

    async def delete(self, match: re.Match[str], _body: dict[str, Any]) -> None:
        await self.node.delete_namespace(match["ns"])

    async def fork(self, match: re.Match[str], body: dict[str, Any]) -> None:
        if body.get("timestamp") is not None:
            raise ProtocolError("point-in-time fork needs backups, which this server does "
                                "not keep; fork without a timestamp")
        await self.node.fork_namespace(match["ns"], match["to"])

    async def get_config(self, match: re.Match[str], _body: dict[str, Any]) -> Any:
        return self.node.namespace_config(match["ns"])

    async def set_config(self, match: re.Match[str], body: dict[str, Any]) -> None:
        _check_jwt_key(body)
        await self.node.set_namespace_config(match["ns"], body)

    async def stats(self, match: re.Match[str], _body: dict[str, Any]) -> Any:
        return self.node.namespace_stats(match["ns"])

    async def content_hash(self, match: re.Match[str], _body: dict[str, Any]) -> Any:
        return await self.node.namespace_hash(match["ns"])

    async def policies(self, match: re.Match[str], _body: dict[str, Any]) -> Any:
        return {"conflict_policies": await self.node.conflict_policies(match["ns"])}

    async def set_policy(self, match: re.Match[str], body: dict[str, Any]) -> Any:
        """A table's conflict policy for offline pushes (a replicated write: leader)."""
        return await self.node.set_conflict_policy(match["ns"], body)

    async def diagnostics(self, _match: re.Match[str], _body: dict[str, Any]) -> Any:
        return [f"stream {i}: open" for i in range(len(self.streams))]

    async def cluster_status(self, _match: re.Match[str], _body: dict[str, Any]) -> Any:
        return await self._cluster().status()

    async def join(self, _match: re.Match[str], body: dict[str, Any]) -> Any:
        return await self._cluster().join(body)

    async def add_member(self, _match: re.Match[str], body: dict[str, Any]) -> None:
        await self._cluster().add_member(body)

    async def remove_member(self, match: re.Match[str], _body: dict[str, Any]) -> None:
        await self._cluster().remove_member(match["member"])

    async def promote(self, match: re.Match[str], _body: dict[str, Any]) -> None:
        await self._cluster().promote(match["member"])

    async def transfer(self, _match: re.Match[str], body: dict[str, Any]) -> None:
        target = body.get("to")
        if not isinstance(target, str) or not target:
            raise ProtocolError("field `to` (the node id to hand leadership to) is required")
        await self._cluster().transfer(target)

    def _cluster(self) -> ClusterService:
        if self.cluster is None:
            raise ProtocolError("this server is not part of a cluster")
        return self.cluster

    async def render_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(),
                            content_type="text/plain", charset="utf-8")


def _check_jwt_key(body: dict[str, Any]) -> None:
    """A namespace key must load like the node's (``--auth-jwt-key-file`` formats)."""
    key = body.get("jwt_key")
    if key is None:
        return
    if not isinstance(key, str):
        raise ProtocolError("`jwt_key` must be a string (PEM or base64url Ed25519 keys)")
    try:
        parse_public_keys(key, source="jwt_key")
    except ConfigError as exc:
        raise ProtocolError(f"`jwt_key` is not usable: {exc.message}") from exc


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError("the body must be a JSON object")
    return body


def _response(status: int, body: bytes) -> web.Response:
    if status == 200 and not body:
        return web.Response(status=200)
    content_type = "application/json" if body[:1] in (b"{", b"[") else "text/plain"
    return web.Response(status=status, body=body, content_type=content_type)
