"""Hrana over WebSocket, client side, without I/O (protocol.md §4).

``WsWire`` turns a ``Pipeline`` of HTTP-style stream requests into WebSocket frames —
``open_stream`` first when the pipeline has no stream yet, ``close`` becomes
``close_stream``, the rest gain the stream id — and collects the responses, matched by
request id, back into a ``Reply`` shaped exactly like an HTTP one. So the session never
knows which wire it is on.

Per socket: ``start(subprotocol)`` returns the ``hello`` frame; the first message back
must be ``hello_ok`` (``hello_error`` becomes a ``WireError`` with the server's
``AUTH_*`` code). The transports wait for it (``receive_hello``) when they open a socket,
so a bad token fails ``connect()``; ``receive`` also accepts it first, for a wire used
without waiting. Stream and request ids are never reused on one socket. Session consistency
travels as ``replication_index`` on each statement and batch (there are no per-request
headers on a socket).

Invariant: ``pending`` holds exactly the request ids sent and not yet answered;
answers to ids of an abandoned pipeline are dropped.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Final

import msgspec

from edgelite.client.errors import DataError
from edgelite.client.exchange import Executed, Pipeline, Reply, WireError
from edgelite.errors import ProtocolError
from edgelite.protocol.hrana import (
    BatchRequest,
    CloseRequest,
    CloseResponse,
    CloseStreamRequest,
    CloseStreamResponse,
    DescribeRequest,
    ExecuteRequest,
    GetAutocommitRequest,
    HelloErrorMsg,
    HelloMsg,
    HelloOkMsg,
    OpenStreamRequest,
    RequestMsg,
    ResponseErrorMsg,
    ResponseOkMsg,
    SequenceRequest,
    StreamRequest,
    StreamResult,
    StreamResultError,
    StreamResultOk,
    WsBatchRequest,
    WsDescribeRequest,
    WsExecuteRequest,
    WsGetAutocommitRequest,
    WsRequest,
    WsSequenceRequest,
    decode_ws_server_message,
    encode_ws_client_message,
)

__all__ = ["SUBPROTOCOLS", "PendingPipeline", "WsStream", "WsWire"]

# Offered in this order; the server picks (protocol.md §4.1).
SUBPROTOCOLS: Final = ("hrana3", "hrana2")
_VERSIONS: Final = {"hrana3": 3, "hrana2": 2, "hrana1": 1}
_INT32_SPAN: Final = 2**31


@dataclasses.dataclass(frozen=True, slots=True)
class WsStream:
    """A stream token: the stream id, valid only on the socket (``epoch``) that opened it."""

    epoch: int
    stream_id: int


@dataclasses.dataclass(slots=True)
class PendingPipeline:
    """One pipeline in flight: which request id answers which request."""

    slots: dict[int, int]  # request id -> index in the pipeline (-1: open_stream)
    results: list[StreamResult | None]
    stream_id: int
    closes: bool
    open_failed: StreamResultError | None = None


class WsWire:
    def __init__(self, *, auth_token: str | None) -> None:
        self.auth_token = auth_token
        self.version = 0
        self._hello_answered = False
        self._request_ids = itertools.count()
        self._stream_ids = itertools.count()
        self._epoch = 0  # which socket a stream token belongs to

    def start(self, subprotocol: str | None) -> str:
        """A new socket was opened with ``subprotocol``; return the hello frame."""
        version = _VERSIONS.get(subprotocol or "hrana1", 0)
        if version < 2:
            raise WireError(
                f"the server speaks {subprotocol or 'hrana1'}; edgelite needs hrana2 or "
                "newer over WebSocket", code="PROTOCOL_ERROR", executed=Executed.NO)
        self.version = version
        self._hello_answered = False
        self._request_ids = itertools.count()
        self._stream_ids = itertools.count()
        self._epoch += 1
        return encode_ws_client_message(HelloMsg(jwt=self.auth_token))

    def receive_hello(self, text: str | bytes) -> None:
        """The server's answer to ``hello`` (``hello_error`` raises ``WireError``)."""
        try:
            message = decode_ws_server_message(text)
        except ProtocolError as exc:
            raise WireError(f"the server sent an invalid WebSocket message: {exc.message}",
                            code="PROTOCOL_ERROR", executed=Executed.NO) from exc
        self._answer_hello(message)

    def _next_request_id(self) -> int:
        return next(self._request_ids) % _INT32_SPAN

    def frames(self, pipeline: Pipeline) -> tuple[list[str], PendingPipeline]:
        """The frames to send for ``pipeline``; raises DataError for unencodable values."""
        requests: list[WsRequest] = []
        if pipeline.stream is None:
            stream_id = next(self._stream_ids) % _INT32_SPAN
            requests.append(OpenStreamRequest(stream_id))
        else:
            token = pipeline.stream
            assert isinstance(token, WsStream), token
            if token.epoch != self._epoch:
                raise WireError("the WebSocket connection holding this stream was lost",
                                code="STREAM_LOST", executed=Executed.NO, retryable=True)
            stream_id = token.stream_id
        bookmark = pipeline.bookmark
        requests.extend(_ws_request(r, stream_id, bookmark) for r in pipeline.requests)
        offset = len(requests) - len(pipeline.requests)
        slots: dict[int, int] = {}
        texts: list[str] = []
        try:
            for index, request in enumerate(requests):
                request_id = self._next_request_id()
                slots[request_id] = index - offset
                texts.append(encode_ws_client_message(RequestMsg(request_id, request)))
        except ProtocolError as exc:
            raise DataError(f"cannot send the parameters: {exc.message}",
                            code="ARGS_INVALID") from exc
        closes = bool(pipeline.requests) and type(pipeline.requests[-1]) is CloseRequest
        pending = PendingPipeline(slots, [None] * len(pipeline.requests), stream_id, closes)
        return texts, pending

    def receive(self, pending: PendingPipeline, text: str | bytes) -> Reply | None:
        """Feed one server frame; the ``Reply`` once every request is answered."""
        try:
            message = decode_ws_server_message(text)
        except ProtocolError as exc:
            raise WireError(f"the server sent an invalid WebSocket message: {exc.message}",
                            code="PROTOCOL_ERROR", executed=Executed.MAYBE) from exc
        if not self._hello_answered:
            self._answer_hello(message)
            return None
        if type(message) is ResponseOkMsg:
            self._fill(pending, message.request_id,
                       StreamResultOk(_as_http_response(message.response)))
        elif type(message) is ResponseErrorMsg:
            self._fill(pending, message.request_id, StreamResultError(message.error))
        else:
            raise WireError(f"unexpected {type(message).__name__} from the server",
                            code="PROTOCOL_ERROR", executed=Executed.MAYBE)
        if pending.slots:
            return None
        if pending.open_failed is not None:
            error = pending.open_failed.error
            raise WireError(f"the server could not open a stream: {error.message}",
                            code=error.code or "STREAM_NOT_OPEN", executed=Executed.NO)
        assert all(r is not None for r in pending.results)
        stream = None if pending.closes else WsStream(self._epoch, pending.stream_id)
        return Reply(pending.results, stream, None)  # type: ignore[arg-type]

    def _answer_hello(self, message: object) -> None:
        if type(message) is HelloOkMsg:
            self._hello_answered = True
            return
        if type(message) is HelloErrorMsg:
            raise WireError(f"authentication failed: {message.error.message} "
                            "(check auth_token / authToken)",
                            code=message.error.code or "AUTH_FAILED", executed=Executed.NO)
        raise WireError(f"expected hello_ok, got {type(message).__name__}",
                        code="PROTOCOL_ERROR", executed=Executed.MAYBE)

    @staticmethod
    def _fill(pending: PendingPipeline, request_id: int, result: StreamResult) -> None:
        index = pending.slots.pop(request_id, None)
        if index is None:
            raise WireError(f"the server answered request {request_id}, which is not "
                            "pending", code="PROTOCOL_ERROR", executed=Executed.MAYBE)
        if index < 0:
            if type(result) is StreamResultError:
                pending.open_failed = result
            return
        pending.results[index] = result


def _ws_request(request: StreamRequest, stream_id: int, bookmark: int | None) -> WsRequest:
    kind = type(request)
    if kind is ExecuteRequest:
        stmt = request.stmt  # type: ignore[union-attr]
        if bookmark is not None:
            stmt = msgspec.structs.replace(stmt, replication_index=bookmark)
        return WsExecuteRequest(stream_id, stmt)
    if kind is BatchRequest:
        batch = request.batch  # type: ignore[union-attr]
        if bookmark is not None:
            batch = msgspec.structs.replace(batch, replication_index=bookmark)
        return WsBatchRequest(stream_id, batch)
    if kind is CloseRequest:
        return CloseStreamRequest(stream_id)
    if kind is GetAutocommitRequest:
        return WsGetAutocommitRequest(stream_id)
    if kind is SequenceRequest:
        return WsSequenceRequest(stream_id, sql=request.sql,  # type: ignore[union-attr]
                                 sql_id=request.sql_id,  # type: ignore[union-attr]
                                 replication_index=bookmark)
    if kind is DescribeRequest:
        return WsDescribeRequest(stream_id, sql=request.sql,  # type: ignore[union-attr]
                                 sql_id=request.sql_id)  # type: ignore[union-attr]
    return request  # type: ignore[return-value]  # store_sql / close_sql: connection scope


def _as_http_response(response: Any) -> Any:
    """WebSocket responses whose shape differs from the HTTP ones."""
    if type(response) is CloseStreamResponse:
        return CloseResponse()
    return response
