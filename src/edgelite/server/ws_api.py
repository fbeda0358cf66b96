"""Hrana over WebSocket (``GET /`` with Upgrade; hrana1, hrana2, hrana3).

The pure ``WsSession`` decides everything protocol; this module moves frames and runs
requests. Requests on one stream run in order; different streams run concurrently
(a transaction open on one stream must not block the COMMIT arriving for it behind a
write waiting on another stream of the same socket).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from edgelite.auth import Access, Authenticator, Identity
from edgelite.errors import AuthenticationError, EdgeliteError, NotLeaderError, ProtocolError
from edgelite.protocol import hrana
from edgelite.protocol.hrana import messages as m
from edgelite.protocol.hrana import ws_messages as wm
from edgelite.protocol.hrana import ws_session as wss
from edgelite.server.http_api import Call, UserApi, max_staleness_of
from edgelite.server.metrics import Metrics
from edgelite.server.namespaces import namespace_for
from edgelite.server.responses import error_response
from edgelite.server.service import NodeService

logger = logging.getLogger(__name__)


class WsApi:
    def __init__(self, node: NodeService, authenticator: Authenticator, metrics: Metrics,
                 *, namespaces_enabled: bool, message_bytes_max: int, streams_max: int,
                 limits: hrana.DecodeLimits) -> None:
        self.node = node
        self.authenticator = authenticator
        self.metrics = metrics
        self.namespaces_enabled = namespaces_enabled
        self.message_bytes_max = message_bytes_max
        self.streams_max = streams_max
        self.limits = limits
        self.sockets: set[web.WebSocketResponse] = set()
        self.user_api: UserApi | None = None  # set by Server: proxies streams to the leader

    async def close_all(self) -> None:
        """Server shutdown: close every socket (1001 going away); streams roll back."""
        for socket in list(self.sockets):
            with contextlib.suppress(Exception):
                await socket.close(code=1001, message=b"server shutting down")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPNotFound()
        offered = wss.parse_subprotocol_header(request.headers.get("Sec-WebSocket-Protocol"))
        subprotocol = wss.negotiate_subprotocol(offered) if offered else "hrana1"
        if subprotocol is None:
            return web.Response(status=400, text=wss.unsupported_subprotocol_message())
        try:
            namespace = namespace_for(request.headers, None, enabled=self.namespaces_enabled)
            self.node.namespace_config(namespace)  # unknown namespace: 404 before upgrading
            max_staleness_ms = max_staleness_of(request.headers)
        except EdgeliteError as exc:
            return error_response(exc)
        socket = web.WebSocketResponse(protocols=(subprotocol,) if offered else (),
                                       max_msg_size=self.message_bytes_max, autoping=True)
        await socket.prepare(request)
        connection = _Connection(self, socket, namespace,
                                 wss.WsSession(subprotocol, streams_max=self.streams_max,
                                               limits=self.limits),
                                 request.headers.get("x-edgelite-consistency"),
                                 max_staleness_ms)
        self.metrics.websocket_connections.inc()
        self.sockets.add(socket)
        try:
            await connection.serve()
        finally:
            self.sockets.discard(socket)
            self.metrics.websocket_connections.dec()
            await connection.shutdown()
        return socket


class _Connection:
    def __init__(self, api: WsApi, socket: web.WebSocketResponse, namespace: str,
                 session: wss.WsSession, consistency: str | None,
                 max_staleness_ms: int | None = None) -> None:
        self.api = api
        self.consistency = (consistency or "").strip().lower() or None
        self.max_staleness_ms = max_staleness_ms
        self.remote: dict[int, str | None] = {}  # streams proxied to the leader: baton
        self.node = api.node
        self.socket = socket
        self.namespace = namespace
        self.session = session
        self.identity: Identity | None = None
        self.handles: dict[int, Any] = {}
        self.cursors: dict[int, collections.deque[m.CursorEntry]] = {}
        self.cursor_streams: dict[int, int] = {}
        self.tails: dict[int, asyncio.Future[None]] = {}  # last task per stream
        self.tasks: set[asyncio.Task[None]] = set()
        self.send_lock = asyncio.Lock()

    async def serve(self) -> None:
        async for message in self.socket:
            if message.type == WSMsgType.TEXT:
                events = self.session.receive(message.data)
            elif message.type == WSMsgType.BINARY:
                events = self.session.receive_binary(message.data)
            else:
                break
            if not await self.handle_events(events):
                break

    async def handle_events(self, events: list[Any]) -> bool:
        for event in events:
            if isinstance(event, wss.Hello):
                if not await self.hello(event.jwt):
                    return False
            elif isinstance(event, wss.Send):
                await self.send(event.text)
            elif isinstance(event, wss.Close):
                await self.socket.close(code=event.code, message=event.reason.encode())
                return False
            else:
                assert isinstance(event, wss.RequestEvent)
                self.schedule(event.request_id, event.request)
        return True

    async def hello(self, jwt: str | None) -> bool:
        try:
            authenticator = self.api.authenticator
            if self.api.user_api is not None:
                authenticator = self.api.user_api.authenticator_for(self.namespace)
            self.identity = authenticator.authenticate_jwt(jwt, time.time())
        except AuthenticationError as exc:
            error = m.Error(f"Authentication failed: {exc.message}", exc.code)
            await self.send(self.session.hello_error(error))
            await self.socket.close(code=wss.CLOSE_NORMAL, message=b"Authentication failed")
            return False
        await self.send(self.session.hello_ok())
        return True

    async def send(self, text: str) -> None:
        async with self.send_lock:
            if not self.socket.closed:
                await self.socket.send_str(text)

    def schedule(self, request_id: int, request: Any) -> None:
        if isinstance(request, wm.OpenCursorRequest):
            self.cursor_streams[request.cursor_id] = request.stream_id
        stream_id = _stream_of(request, self.cursor_streams)
        previous = self.tails.get(stream_id) if stream_id is not None else None
        task = asyncio.ensure_future(self.run_after(previous, request_id, request))
        if stream_id is not None:
            self.tails[stream_id] = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run_after(self, previous: asyncio.Future[None] | None, request_id: int,
                        request: Any) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        try:
            response = await self.execute(request)
        except ProtocolError as exc:
            await self.socket.close(code=wss.CLOSE_POLICY_VIOLATION,
                                    message=exc.message[:120].encode())
            return
        except EdgeliteError as exc:
            await self.send(self.session.response_error(request_id, hrana.error_to_hrana(exc)))
            return
        except Exception:
            logger.exception("websocket request failed")
            await self.socket.close(code=wss.CLOSE_INTERNAL_ERROR, message=b"internal error")
            return
        await self.send(self.session.response_ok(request_id, response))

    async def execute(self, request: Any) -> Any:
        if isinstance(request, wm.OpenStreamRequest):
            return await self.open_stream(request.stream_id)
        if isinstance(request, wm.CloseStreamRequest):
            if request.stream_id in self.remote:
                if self.remote[request.stream_id] is not None:
                    await self.remote_request(request.stream_id, m.CloseRequest())
                self.remote.pop(request.stream_id, None)
            handle = self.handles.pop(request.stream_id, None)
            if handle is not None:
                await self.node.close_stream(handle)
            return wm.CloseStreamResponse()
        if isinstance(request, wm.OpenCursorRequest):
            return await self.open_cursor(request)
        if isinstance(request, wm.FetchCursorRequest):
            entries = self.cursors.get(request.cursor_id, collections.deque())
            count = min(request.max_count, len(entries))
            page = [entries.popleft() for _ in range(count)]
            return wm.FetchCursorResponse(page, done=not entries)
        if isinstance(request, wm.CloseCursorRequest):
            self.cursors.pop(request.cursor_id, None)
            self.cursor_streams.pop(request.cursor_id, None)
            return wm.CloseCursorResponse()
        return await self.stream_request(request)

    async def open_stream(self, stream_id: int) -> wm.OpenStreamResponse:
        assert self.identity is not None
        try:
            access = self.identity.access_to(self.namespace)
            if access is Access.NONE:
                raise EdgeliteError(f"Namespace `{self.namespace}` doesn't exist",
                                    code="NAMESPACE_NOT_FOUND")
            self.handles[stream_id] = self.node.open_stream(
                self.namespace, read_only=access < Access.WRITE)
        except EdgeliteError:
            self.session.stream_open_failed(stream_id)
            raise
        return wm.OpenStreamResponse()

    async def open_cursor(self, request: wm.OpenCursorRequest) -> wm.OpenCursorResponse:
        handle = self.handles[request.stream_id]
        try:
            executed = await self.node.cursor(handle, request.batch, hrana.SqlStore(count_max=0))
        except EdgeliteError:
            self.session.cursor_open_failed(request.cursor_id)
            raise
        self.cursors[request.cursor_id] = collections.deque(executed.value)
        return wm.OpenCursorResponse()

    async def stream_request(self, request: Any) -> Any:
        stream_id = request.stream_id
        if stream_id in self.remote:
            return await self.remote_request(stream_id, _as_stream_request(request))
        handle = self.handles[stream_id]
        user_api = self.api.user_api
        try:
            executed = await self.node.pipeline(
                handle, [_as_stream_request(request)], hrana.SqlStore(count_max=0),
                read=self.node.read_level(self._level(), None, self.max_staleness_ms))
        except NotLeaderError:
            if user_api is None or user_api.cluster is None \
                    or not self.node.is_autocommit(handle):
                raise
            # A write on a follower: from now on this stream lives on the leader.
            await self.node.close_stream(self.handles.pop(stream_id))
            self.remote[stream_id] = None
            return await self.remote_request(stream_id, _as_stream_request(request))
        result = executed.value.results[0]
        self.api.metrics.observe_results(self.namespace, [result])
        if isinstance(result, m.StreamResultError):
            raise EdgeliteError(result.error.message, code=result.error.code or "UNKNOWN")
        return result.response

    def _level(self) -> str:
        user_api = self.api.user_api
        default = user_api.config.default_consistency if user_api else "strong"
        return self.consistency or default

    async def remote_request(self, stream_id: int, request: m.StreamRequest) -> Any:
        """Run one request of a proxied stream as a pipeline on the leader's stream."""
        user_api = self.api.user_api
        assert user_api is not None and self.identity is not None
        body = hrana.encode_pipeline_request(m.PipelineRequest(
            baton=self.remote.get(stream_id), requests=[request]))
        call = Call("v3", self.namespace, self.identity, self._level(), None, "")
        reply = await user_api.serve(call, body)
        if reply.status != 200:
            raise EdgeliteError(_error_text(reply.body), code="PROXY_ERROR")
        response = hrana.decode_pipeline_response(reply.body)
        self.remote[stream_id] = response.baton
        result = response.results[0]
        if isinstance(result, m.StreamResultError):
            raise EdgeliteError(result.error.message, code=result.error.code or "UNKNOWN")
        return result.response

    async def shutdown(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for stream_id, baton in list(self.remote.items()):
            if baton is not None:
                with contextlib.suppress(Exception):
                    await self.remote_request(stream_id, m.CloseRequest())
        self.remote.clear()
        for handle in self.handles.values():
            with contextlib.suppress(Exception):
                await self.node.close_stream(handle)
        self.handles.clear()


def _error_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace")[:300]
    return f"the leader refused a forwarded request: {text}"


def _stream_of(request: Any, cursor_streams: dict[int, int]) -> int | None:
    stream_id = getattr(request, "stream_id", None)
    if stream_id is not None:
        return int(stream_id)
    cursor_id = getattr(request, "cursor_id", None)
    return cursor_streams.get(cursor_id) if cursor_id is not None else None


def _as_stream_request(request: Any) -> m.StreamRequest:
    if isinstance(request, wm.WsExecuteRequest):
        return m.ExecuteRequest(request.stmt)
    if isinstance(request, wm.WsBatchRequest):
        return m.BatchRequest(request.batch)
    if isinstance(request, wm.WsSequenceRequest):
        return m.SequenceRequest(sql=request.sql)
    if isinstance(request, wm.WsDescribeRequest):
        return m.DescribeRequest(sql=request.sql)
    assert isinstance(request, wm.WsGetAutocommitRequest), request
    return m.GetAutocommitRequest()
