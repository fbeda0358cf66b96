"""WebSocket transports: ``WsWire`` over ``websockets`` (sync client and asyncio client).

The socket is opened, and the ``hello`` answered, when the connection is made (so a wrong
URL or token fails in ``connect()``, like opening a file), and reopened on demand after it
is lost. Losing it loses its streams, so a transaction in progress is gone (the session
says so). A
pipeline whose first frame could not be written was never seen by the server and may be
retried on a new socket; once a frame went out the outcome is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket as stdlib_socket
import ssl
from collections.abc import Mapping
from typing import Any, Final

import websockets.asyncio.client as ws_async
import websockets.sync.client as ws_sync
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from edgelite.client.exchange import Executed, Pipeline, Reply, WireError
from edgelite.client.target import RemoteTarget
from edgelite.client.transport_http import TransportOptions
from edgelite.client.wire_http import CONSISTENCY_HEADER, MAX_STALENESS_HEADER, http_error
from edgelite.client.wire_ws import SUBPROTOCOLS, PendingPipeline, WsWire

__all__ = ["AsyncWsTransport", "WsTransport"]

_CLOSE_TIMEOUT_S: Final = 2.0


def _connect_kwargs(target: RemoteTarget, options: TransportOptions) -> dict[str, Any]:
    headers = {CONSISTENCY_HEADER: target.consistency}
    if target.max_staleness_ms is not None:
        headers[MAX_STALENESS_HEADER] = str(target.max_staleness_ms)
    if target.namespace is not None:
        headers["x-namespace"] = target.namespace
    kwargs: dict[str, Any] = {
        "subprotocols": list(SUBPROTOCOLS),
        "additional_headers": headers,
        "open_timeout": options.connect_timeout_s,
        "close_timeout": _CLOSE_TIMEOUT_S,
        "max_size": options.message_bytes_max,
        "compression": None,
    }
    if target.base_url.startswith("wss:"):
        if isinstance(options.verify, ssl.SSLContext):
            kwargs["ssl"] = options.verify
        elif options.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            kwargs["ssl"] = context
    return kwargs


def _open_error(exc: Exception, url: str) -> WireError:
    if isinstance(exc, InvalidStatus):
        response = exc.response
        headers: Mapping[str, str] = response.headers
        return http_error(response.status_code, headers.get("content-type", ""),
                          bytes(response.body or b""))
    if isinstance(exc, InvalidHandshake):
        return WireError(f"the WebSocket handshake with {url} failed: {exc}",
                         code="PROTOCOL_ERROR", executed=Executed.NO)
    return WireError(f"cannot connect to {url}: {exc or type(exc).__name__}",
                     code="CONNECT_ERROR", executed=Executed.NO, retryable=True)


def _hello_failed(exc: Exception) -> WireError:
    if isinstance(exc, WireError):
        return exc
    if isinstance(exc, TimeoutError):
        return WireError("the server did not answer the WebSocket hello in time",
                         code="CONNECT_TIMEOUT", executed=Executed.NO, retryable=True)
    return WireError(f"the server closed the WebSocket during the hello: {exc}",
                     code="CONNECTION_LOST", executed=Executed.NO, retryable=True)


def _send_error(sent_frames: int) -> WireError:
    if sent_frames == 0:
        return WireError("the WebSocket connection was closed", code="CONNECTION_LOST",
                         executed=Executed.NO, retryable=True)
    return WireError("the WebSocket connection was lost while sending",
                     code="CONNECTION_LOST", executed=Executed.MAYBE)


def _receive_error(exc: Exception) -> WireError:
    if isinstance(exc, TimeoutError):
        return WireError("no answer on the WebSocket in time", code="TIMEOUT",
                         executed=Executed.MAYBE)
    return WireError(f"the WebSocket connection was lost: {exc}", code="CONNECTION_LOST",
                     executed=Executed.MAYBE)


def _stream_lost() -> WireError:
    return WireError("the WebSocket connection holding this stream was lost",
                     code="STREAM_LOST", executed=Executed.NO, retryable=True)


class WsTransport:
    """Blocking transport over ``websockets.sync`` (its own reader thread does the I/O)."""

    def __init__(self, target: RemoteTarget, options: TransportOptions) -> None:
        self.wire = WsWire(auth_token=target.auth_token)
        self._target = target
        self._options = options
        self._socket: ws_sync.ClientConnection | None = None
        self._open()

    def _open(self) -> None:
        url = self._target.base_url
        try:
            # legacy=True: a plain connection whose lifetime we manage (not a context).
            socket = ws_sync.connect(url, legacy=True,
                                     **_connect_kwargs(self._target, self._options))
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _open_error(exc, url) from exc
        try:
            socket.send(self.wire.start(socket.subprotocol))
            self.wire.receive_hello(socket.recv(timeout=self._options.connect_timeout_s))
        except (WireError, ConnectionClosed, TimeoutError) as exc:
            socket.close()
            raise _hello_failed(exc) from exc
        self._socket = socket

    def _drop(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            socket.close()

    def exchange(self, pipeline: Pipeline) -> Reply:
        if self._socket is None:
            if pipeline.stream is not None:
                raise _stream_lost()
            self._open()
        socket = self._socket
        assert socket is not None
        texts, pending = self.wire.frames(pipeline)
        sent = 0
        try:
            for text in texts:
                socket.send(text)
                sent += 1
        except ConnectionClosed as exc:
            self._drop()
            raise _send_error(sent) from exc
        return self._collect(socket, pending)

    def _collect(self, socket: ws_sync.ClientConnection, pending: PendingPipeline) -> Reply:
        try:
            while True:
                text = socket.recv(timeout=self._options.read_timeout_s)
                reply = self.wire.receive(pending, text)
                if reply is not None:
                    return reply
        except WireError:
            self._drop()
            raise
        except (ConnectionClosed, TimeoutError) as exc:
            self._drop()
            raise _receive_error(exc) from exc

    def close(self) -> None:
        self._drop()

    def abort(self) -> None:
        """Drop the TCP connection without the closing handshake (for finalisers: at
        interpreter exit the library's reader thread can no longer run, and a graceful
        close would wait for it forever)."""
        socket, self._socket = self._socket, None
        if socket is not None:
            raw = socket.socket
            with contextlib.suppress(OSError):
                raw.shutdown(stdlib_socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                raw.close()


class AsyncWsTransport:
    """asyncio transport over ``websockets.asyncio``; open it with ``await open()``."""

    def __init__(self, target: RemoteTarget, options: TransportOptions) -> None:
        self.wire = WsWire(auth_token=target.auth_token)
        self._target = target
        self._options = options
        self._socket: ws_async.ClientConnection | None = None

    async def open(self) -> None:
        url = self._target.base_url
        try:
            socket = await ws_async.connect(url, **_connect_kwargs(self._target,
                                                                   self._options))
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _open_error(exc, url) from exc
        try:
            await socket.send(self.wire.start(socket.subprotocol))
            async with asyncio.timeout(self._options.connect_timeout_s):
                self.wire.receive_hello(await socket.recv())
        except (WireError, ConnectionClosed, TimeoutError) as exc:
            await socket.close()
            raise _hello_failed(exc) from exc
        self._socket = socket

    async def _drop(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()

    async def exchange(self, pipeline: Pipeline) -> Reply:
        if self._socket is None:
            if pipeline.stream is not None:
                raise _stream_lost()
            await self.open()
        socket = self._socket
        assert socket is not None
        texts, pending = self.wire.frames(pipeline)
        sent = 0
        try:
            for text in texts:
                await socket.send(text)
                sent += 1
        except ConnectionClosed as exc:
            await self._drop()
            raise _send_error(sent) from exc
        try:
            async with asyncio.timeout(self._options.read_timeout_s):
                while True:
                    reply = self.wire.receive(pending, await socket.recv())
                    if reply is not None:
                        return reply
        except WireError:
            await self._drop()
            raise
        except (ConnectionClosed, TimeoutError) as exc:
            await self._drop()
            raise _receive_error(exc) from exc

    async def aclose(self) -> None:
        await self._drop()
