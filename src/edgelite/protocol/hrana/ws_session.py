"""A sans-IO Hrana-over-WebSocket server session (protocol.md §4).

The server feeds each text frame to ``receive`` and acts on the returned events, in
order; it executes SQL itself and answers through the send helpers, which return text
frames. The session owns everything that is pure protocol: the hello/auth state, the
negotiated version and which requests it allows, stream, cursor and stored-SQL ids
(stored SQL is connection-wide on WebSocket, so the session resolves ``sql_id`` into
the text before handing a request over), and the close codes of protocol violations.

Events:

- ``Hello(jwt)``: authenticate, then call ``hello_ok()`` or ``hello_error(err)`` (after
  which the server sends the frame and closes with 1000). Call one of them before
  feeding the next frame: the client does not wait for the answer, so later frames
  may already be there.
- ``RequestEvent(request_id, request)``: execute it (requests on one stream in order)
  and answer with ``response_ok`` or ``response_error``. Its ``sql_id``s are resolved.
- ``Send(text)``: a frame the session answered by itself (``store_sql``, ``close_sql``,
  requests on a stream or cursor that failed to open); send it.
- ``Close(code, reason)``: a protocol violation; close the socket with it.

Invariants: every ``RequestEvent`` gets exactly one response (``pending_count`` counts
those without one; a server that stops reading while it is high has backpressure);
stream and cursor ids in use are unique; a cursor belongs to exactly one open stream
and a stream has at most one cursor; at most ``streams_max`` streams (open or failed).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeAlias

from edgelite.errors import LimitExceededError, ProtocolError
from edgelite.protocol.hrana.batch import validate_batch, validate_stmt
from edgelite.protocol.hrana.errors import error_to_hrana
from edgelite.protocol.hrana.json_codec import (
    DEFAULT_LIMITS,
    MALFORMED_JSON_CODE,
    DecodeLimits,
    decode_ws_client_message,
    encode_ws_server_message,
)
from edgelite.protocol.hrana.messages import (
    CloseSqlRequest,
    CloseSqlResponse,
    Error,
    StoreSqlRequest,
    StoreSqlResponse,
    type_tag,
)
from edgelite.protocol.hrana.sql_store import SqlStore
from edgelite.protocol.hrana.ws_messages import (
    WS_REQUEST_MIN_VERSION,
    CloseCursorRequest,
    CloseCursorResponse,
    CloseStreamRequest,
    CloseStreamResponse,
    FetchCursorRequest,
    HelloErrorMsg,
    HelloMsg,
    HelloOkMsg,
    OpenCursorRequest,
    OpenStreamRequest,
    RequestMsg,
    ResponseErrorMsg,
    ResponseOkMsg,
    WsBatchRequest,
    WsDescribeRequest,
    WsExecuteRequest,
    WsGetAutocommitRequest,
    WsRequest,
    WsResponse,
    WsSequenceRequest,
)

__all__ = [
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_PAYLOAD",
    "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_UNSUPPORTED_DATA",
    "SUBPROTOCOL_VERSIONS",
    "Close",
    "Hello",
    "RequestEvent",
    "Send",
    "SessionState",
    "WsEvent",
    "WsSession",
    "negotiate_subprotocol",
    "parse_subprotocol_header",
    "unsupported_subprotocol_message",
]

CLOSE_NORMAL: Final = 1000
CLOSE_UNSUPPORTED_DATA: Final = 1003  # wrong frame type
CLOSE_INVALID_PAYLOAD: Final = 1007  # undecodable JSON
CLOSE_POLICY_VIOLATION: Final = 1008  # protocol violation
CLOSE_INTERNAL_ERROR: Final = 1011
_CLOSE_REASON_BYTES_MAX: Final = 123  # RFC 6455 §5.5: control frame payload <= 125 bytes

# sqld's preference order (minus hrana3-protobuf, which we do not speak).
SUBPROTOCOL_VERSIONS: Final[dict[str, int]] = {"hrana3": 3, "hrana2": 2, "hrana1": 1}


def parse_subprotocol_header(value: str | None) -> list[str]:
    """``Sec-WebSocket-Protocol: hrana2, hrana1`` -> ``["hrana2", "hrana1"]``."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def negotiate_subprotocol(offered: Sequence[str]) -> str | None:
    """The subprotocol to speak, or None to refuse the upgrade (HTTP 400).

    Nothing offered means hrana1; the server must then echo no subprotocol (a client
    rejects one it did not offer). Otherwise the first of our preferences offered.
    """
    if not offered:
        return "hrana1"
    for name in SUBPROTOCOL_VERSIONS:
        if name in offered:
            return name
    return None


def unsupported_subprotocol_message() -> str:
    return "Only these WebSocket subprotocols are supported: " + ", ".join(SUBPROTOCOL_VERSIONS)


@dataclasses.dataclass(frozen=True, slots=True)
class Hello:
    jwt: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class RequestEvent:
    request_id: int
    request: WsRequest


@dataclasses.dataclass(frozen=True, slots=True)
class Send:
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


WsEvent: TypeAlias = Hello | RequestEvent | Send | Close


class SessionState(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    AUTHENTICATING = "authenticating"  # a hello arrived; the server is checking it
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


@dataclasses.dataclass(slots=True)
class _Stream:
    failed: bool = False
    cursor_id: int | None = None


@dataclasses.dataclass(slots=True)
class _Cursor:
    stream_id: int
    failed: bool = False


def _truncated_reason(reason: str) -> str:
    encoded = reason.encode("utf-8")
    if len(encoded) <= _CLOSE_REASON_BYTES_MAX:
        return reason
    return encoded[: _CLOSE_REASON_BYTES_MAX - 3].decode("utf-8", "ignore") + "..."


class WsSession:
    """One WebSocket connection's protocol state (see the module docstring)."""

    def __init__(
        self,
        subprotocol: str,
        *,
        streams_max: int = 1024,
        stored_sql_max: int = 150,
        stored_sql_total_bytes_max: int = 16 * 1024 * 1024,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:
        if subprotocol not in SUBPROTOCOL_VERSIONS:
            raise ValueError(f"unsupported subprotocol {subprotocol!r}")
        assert streams_max >= 1
        self.subprotocol = subprotocol
        self.version = SUBPROTOCOL_VERSIONS[subprotocol]
        self.state = SessionState.AWAITING_HELLO
        self.close_reason: str | None = None
        self._streams_max = streams_max
        self._limits = limits
        self._sql = SqlStore(count_max=stored_sql_max, total_bytes_max=stored_sql_total_bytes_max)
        self._streams: dict[int, _Stream] = {}
        self._cursors: dict[int, _Cursor] = {}
        self._pending: dict[int, str] = {}  # request id -> expected response type
        self._handlers: dict[type, Callable[[int, Any], list[WsEvent]]] = {
            OpenStreamRequest: self._open_stream,
            CloseStreamRequest: self._close_stream,
            WsExecuteRequest: self._execute,
            WsBatchRequest: self._batch,
            WsSequenceRequest: self._sql_request,
            WsDescribeRequest: self._sql_request,
            WsGetAutocommitRequest: self._stream_request,
            StoreSqlRequest: self._store_sql,
            CloseSqlRequest: self._close_sql,
            OpenCursorRequest: self._open_cursor,
            FetchCursorRequest: self._fetch_cursor,
            CloseCursorRequest: self._close_cursor,
        }

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def stream_ids(self) -> frozenset[int]:
        return frozenset(self._streams)

    # --- input ----------------------------------------------------------------------------

    def receive(self, text: str) -> list[WsEvent]:
        """Process one text frame."""
        if self.state is SessionState.CLOSED:
            return []
        try:
            message = decode_ws_client_message(text)
        except ProtocolError as exc:
            bad_json = exc.code == MALFORMED_JSON_CODE
            return [
                self._close(CLOSE_INVALID_PAYLOAD if bad_json else CLOSE_POLICY_VIOLATION, str(exc))
            ]
        if isinstance(message, HelloMsg):
            return self._hello(message)
        return self._request(message)

    def receive_binary(self, data: bytes) -> list[WsEvent]:
        """Process one binary frame: JSON subprotocols only use text frames."""
        if self.state is SessionState.CLOSED:
            return []
        return [
            self._close(
                CLOSE_UNSUPPORTED_DATA,
                f"{self.subprotocol} uses text frames; received a binary frame",
            )
        ]

    def _close(self, code: int, reason: str) -> Close:
        self.state = SessionState.CLOSED
        self.close_reason = reason
        return Close(code, _truncated_reason(reason))

    def _hello(self, message: HelloMsg) -> list[WsEvent]:
        if self.state is not SessionState.AWAITING_HELLO and self.version < 2:
            return [
                self._close(
                    CLOSE_POLICY_VIOLATION,
                    "Repeated hello message is only supported in hrana2 and higher",
                )
            ]
        self.state = SessionState.AUTHENTICATING
        return [Hello(message.jwt)]

    def _request(self, message: RequestMsg) -> list[WsEvent]:
        if self.state is SessionState.AWAITING_HELLO:
            return [self._close(CLOSE_POLICY_VIOLATION, "Received a request before hello")]
        request = message.request
        min_version = WS_REQUEST_MIN_VERSION[type(request)]
        if self.version < min_version:
            return [
                self._close(
                    CLOSE_POLICY_VIOLATION,
                    f"The `{type_tag(request)}` request is only supported in protocol version "
                    f"hrana{min_version} and higher",
                )
            ]
        if message.request_id in self._pending:
            return [
                self._close(
                    CLOSE_POLICY_VIOLATION,
                    f"Request id {message.request_id} is already used by a request in flight",
                )
            ]
        try:
            return self._handlers[type(request)](message.request_id, request)
        except ProtocolError as exc:
            return [self._close(CLOSE_POLICY_VIOLATION, str(exc))]

    # --- request handlers (raise ProtocolError for violations) ----------------------------

    def _forward(self, request_id: int, request: WsRequest) -> list[WsEvent]:
        self._pending[request_id] = type_tag(request)
        return [RequestEvent(request_id, request)]

    def _reply(self, request_id: int, response: WsResponse) -> list[WsEvent]:
        return [Send(encode_ws_server_message(ResponseOkMsg(request_id, response)))]

    def _reply_error(self, request_id: int, code: str, message: str) -> list[WsEvent]:
        error = Error(message, code)
        return [Send(encode_ws_server_message(ResponseErrorMsg(request_id, error)))]

    def _stream(self, stream_id: int) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise ProtocolError(f"Stream {stream_id} not found")
        return stream

    def _open_stream(self, request_id: int, request: OpenStreamRequest) -> list[WsEvent]:
        if request.stream_id in self._streams:
            raise ProtocolError(f"Stream {request.stream_id} already exists")
        if len(self._streams) >= self._streams_max:
            raise ProtocolError(f"Too many streams on one connection (at most {self._streams_max})")
        self._streams[request.stream_id] = _Stream()
        return self._forward(request_id, request)

    def _close_stream(self, request_id: int, request: CloseStreamRequest) -> list[WsEvent]:
        stream = self._stream(request.stream_id)
        del self._streams[request.stream_id]
        if stream.cursor_id is not None:
            del self._cursors[stream.cursor_id]
        if stream.failed:
            return self._reply(request_id, CloseStreamResponse())
        return self._forward(request_id, request)

    def _stream_request(self, request_id: int, request: Any) -> list[WsEvent]:
        """A request on an open stream, forwarded as is (after any rewriting)."""
        if self._stream(request.stream_id).failed:
            return self._reply_error(
                request_id, "STREAM_NOT_OPEN", f"Stream {request.stream_id} has failed to open"
            )
        return self._forward(request_id, request)

    def _execute(self, request_id: int, request: WsExecuteRequest) -> list[WsEvent]:
        self._stream(request.stream_id)
        validate_stmt(request.stmt, self.version, path="$.request.stmt")
        stmt = self._sql.resolve_stmt(request.stmt)
        if stmt is not request.stmt:
            request = WsExecuteRequest(request.stream_id, stmt)
        return self._stream_request(request_id, request)

    def _batch(self, request_id: int, request: WsBatchRequest) -> list[WsEvent]:
        self._stream(request.stream_id)
        batch = self._checked_batch(request.batch)
        if batch is not request.batch:
            request = WsBatchRequest(request.stream_id, batch)
        return self._stream_request(request_id, request)

    def _checked_batch(self, batch: Any) -> Any:
        validate_batch(
            batch,
            self.version,
            steps_max=self._limits.statements_max,
            condition_depth_max=self._limits.condition_depth_max,
            path="$.request.batch",
        )
        return self._sql.resolve_batch(batch)

    def _sql_request(
        self, request_id: int, request: WsSequenceRequest | WsDescribeRequest
    ) -> list[WsEvent]:
        self._stream(request.stream_id)
        if request.sql_id is not None:
            sql = self._sql.get(request.sql_id)
            request = type(request)(request.stream_id, sql, None, request.replication_index)
        return self._stream_request(request_id, request)

    def _store_sql(self, request_id: int, request: StoreSqlRequest) -> list[WsEvent]:
        try:
            self._sql.store(request.sql_id, request.sql)
        except LimitExceededError as exc:
            error = error_to_hrana(exc)
            return [Send(encode_ws_server_message(ResponseErrorMsg(request_id, error)))]
        return self._reply(request_id, StoreSqlResponse())

    def _close_sql(self, request_id: int, request: CloseSqlRequest) -> list[WsEvent]:
        self._sql.close(request.sql_id)
        return self._reply(request_id, CloseSqlResponse())

    def _open_cursor(self, request_id: int, request: OpenCursorRequest) -> list[WsEvent]:
        stream = self._stream(request.stream_id)
        if stream.cursor_id is not None:
            raise ProtocolError(f"Stream {request.stream_id} already has an open cursor")
        if request.cursor_id in self._cursors:
            raise ProtocolError(f"Cursor {request.cursor_id} already exists")
        batch = self._checked_batch(request.batch)
        if batch is not request.batch:
            request = OpenCursorRequest(request.stream_id, request.cursor_id, batch)
        self._cursors[request.cursor_id] = _Cursor(request.stream_id, failed=stream.failed)
        stream.cursor_id = request.cursor_id
        return self._stream_request(request_id, request)

    def _cursor(self, cursor_id: int) -> _Cursor:
        cursor = self._cursors.get(cursor_id)
        if cursor is None:
            raise ProtocolError(f"Cursor {cursor_id} not found")
        return cursor

    def _fetch_cursor(self, request_id: int, request: FetchCursorRequest) -> list[WsEvent]:
        if self._cursor(request.cursor_id).failed:
            return self._reply_error(
                request_id, "CURSOR_NOT_OPEN", f"Cursor {request.cursor_id} has failed to open"
            )
        return self._forward(request_id, request)

    def _close_cursor(self, request_id: int, request: CloseCursorRequest) -> list[WsEvent]:
        cursor = self._cursor(request.cursor_id)
        del self._cursors[request.cursor_id]
        self._streams[cursor.stream_id].cursor_id = None
        if cursor.failed:
            return self._reply(request_id, CloseCursorResponse())
        return self._forward(request_id, request)

    # --- output ---------------------------------------------------------------------------

    def hello_ok(self) -> str:
        assert self.state is SessionState.AUTHENTICATING, f"hello_ok in state {self.state}"
        self.state = SessionState.AUTHENTICATED
        return encode_ws_server_message(HelloOkMsg())

    def hello_error(self, error: Error) -> str:
        """The frame to send before closing with ``CLOSE_NORMAL``."""
        assert self.state is SessionState.AUTHENTICATING, f"hello_error in state {self.state}"
        self.state = SessionState.CLOSED
        self.close_reason = error.message
        return encode_ws_server_message(HelloErrorMsg(error))

    def response_ok(self, request_id: int, response: WsResponse) -> str:
        expected = self._pending.get(request_id)
        assert expected is not None, f"no request {request_id} is waiting for a response"
        assert type_tag(response) == expected, f"{type_tag(response)} answers {expected}"
        # Encode first: if the response cannot be sent, the caller answers with an error.
        text = encode_ws_server_message(ResponseOkMsg(request_id, response))
        del self._pending[request_id]
        return text

    def response_error(self, request_id: int, error: Error) -> str:
        assert request_id in self._pending, f"no request {request_id} is waiting for a response"
        text = encode_ws_server_message(ResponseErrorMsg(request_id, error))
        del self._pending[request_id]
        return text

    def stream_open_failed(self, stream_id: int) -> None:
        """The server could not open ``stream_id`` (it answered its ``open_stream`` with an
        error); from now on the session answers requests on it with ``STREAM_NOT_OPEN``."""
        self._streams[stream_id].failed = True

    def cursor_open_failed(self, cursor_id: int) -> None:
        """Likewise for a cursor: ``fetch_cursor`` gets ``CURSOR_NOT_OPEN``."""
        self._cursors[cursor_id].failed = True

    def check_invariants(self) -> None:
        assert len(self._streams) <= self._streams_max
        for cursor_id, cursor in self._cursors.items():
            assert self._streams[cursor.stream_id].cursor_id == cursor_id
        for stream in self._streams.values():
            assert stream.cursor_id is None or stream.cursor_id in self._cursors
