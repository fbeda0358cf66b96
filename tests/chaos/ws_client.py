"""A Hrana-over-WebSocket client with the same classified answers as ``client.Client``.

Streams opened on a follower live on the leader (the follower proxies them), so this
exercises a second write and read path under faults. One connection and one stream per
member, opened on demand; any error or timeout drops the connection (the next request
opens a new one), as the libSQL clients do.

Outcomes, as in ``client.py``: a request that could not be sent (no connection) is
certainly not applied; no answer in time or a connection lost after sending is unknown;
an error answer is classified by its code.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tests.chaos.client import CLIENT_TIMEOUT_S, Answer, Outcome, result_error
from tests.support.cluster import Member

STREAM_ID = 1


class WsClient:
    def __init__(self, consistency: str = "strong", timeout_s: float = CLIENT_TIMEOUT_S) -> None:
        self.consistency = consistency
        self.timeout_s = timeout_s
        self._sockets: dict[str, ClientConnection] = {}
        self._ids = itertools.count(1)

    def close(self) -> None:
        for socket in self._sockets.values():
            _close(socket)
        self._sockets.clear()

    def _socket(self, member: Member) -> ClientConnection:
        socket = self._sockets.get(member.node_id)
        if socket is not None:
            return socket
        url = member.url.replace("http://", "ws://")
        # websockets wants its connections used as context managers.
        socket = connect(url, subprotocols=["hrana3"],  # type: ignore[list-item]
                         open_timeout=self.timeout_s,
                         additional_headers={"x-edgelite-consistency": self.consistency}
                         ).__enter__()
        try:
            socket.send(json.dumps({"type": "hello", "jwt": None}))
            hello = json.loads(socket.recv(timeout=self.timeout_s))
            if hello.get("type") != "hello_ok":
                raise ConnectionError(f"hello refused: {hello}")
            opened = self._request(socket, {"type": "open_stream", "stream_id": STREAM_ID})
            if opened.get("type") != "response_ok":
                raise ConnectionError(f"open_stream refused: {opened}")
        except BaseException:
            _close(socket)
            raise
        self._sockets[member.node_id] = socket
        return socket

    def _request(self, socket: ClientConnection, request: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        socket.send(json.dumps({"type": "request", "request_id": request_id,
                                "request": request}))
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = json.loads(socket.recv(timeout=max(0.0, deadline - time.monotonic())))
            if message.get("request_id") == request_id:
                return message  # type: ignore[no-any-return]

    def execute(self, member: Member, stmt: dict[str, Any]) -> Answer:
        """Run one statement on ``member``'s stream; the answer is shaped like an HTTP
        pipeline's (``results[0]`` is the execute result)."""
        started = time.monotonic()
        try:
            socket = self._socket(member)
        except (OSError, TimeoutError, WebSocketException, ConnectionError, ValueError) as exc:
            self._drop(member)
            return Answer(Outcome.FAIL, "CONNECT", f"{type(exc).__name__}: {exc}",
                          started=started, finished=time.monotonic())
        try:
            reply = self._request(socket, {"type": "execute", "stream_id": STREAM_ID,
                                           "stmt": stmt})
        except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
            self._drop(member)
            return Answer(Outcome.UNKNOWN, "WS", f"{type(exc).__name__}: {exc}",
                          started=started, finished=time.monotonic())
        finished = time.monotonic()
        if reply.get("type") == "response_ok":
            return Answer(Outcome.OK, results=[{"type": "ok", "response": reply["response"]}],
                          started=started, finished=finished)
        self._drop(member)  # the stream may be gone with the error: start afresh
        answer = Answer(Outcome.OK, started=started, finished=finished)
        return result_error(answer, reply.get("error") or {})

    def _drop(self, member: Member) -> None:
        socket = self._sockets.pop(member.node_id, None)
        if socket is not None:
            _close(socket)


def _close(socket: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        socket.__exit__(None, None, None)


__all__ = ["WsClient"]
