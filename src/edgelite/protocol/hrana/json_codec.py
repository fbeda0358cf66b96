"""Hrana JSON encoding: bytes/text <-> messages, for every endpoint (protocol.md §1-§5).

Decoders raise ``ProtocolError`` and nothing else, with a message that says what was
wrong and where (``... - at `$.requests[0].stmt.args[1]```). Malformed JSON or text that
is not UTF-8 carries ``code == MALFORMED_JSON_CODE`` (WebSocket close 1007); every other
failure keeps the default code (close 1008, HTTP 400).

Request decoders also apply the limits and version rules that must hold before anything
runs: request and step counts, condition depth and step references, and features newer
than the negotiated version (``get_autocommit`` and ``is_autocommit`` need Hrana 3,
``sql_id`` needs Hrana 2). The WebSocket decoder leaves those to ``WsSession``, which
owns the connection's version.

Encoders accept Python-valued messages (``_wire.to_wire``) and raise ``ProtocolError``
for a value JSON cannot carry (non-finite float, integer beyond 64 bits, lone surrogate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final, TypeVar

import msgspec

from edgelite.errors import ProtocolError
from edgelite.protocol.hrana import legacy, messages, ws_messages
from edgelite.protocol.hrana._wire import prepare_plans, to_wire
from edgelite.protocol.hrana.batch import (
    CONDITION_DEPTH_MAX_DEFAULT,
    STEPS_MAX_DEFAULT,
    validate_batch,
    validate_stmt,
)
from edgelite.protocol.hrana.legacy import LegacyError, LegacyRequest, LegacyResponseItem
from edgelite.protocol.hrana.messages import (
    BatchRequest,
    CursorEntry,
    CursorHead,
    CursorRequest,
    Error,
    ExecuteRequest,
    GetAutocommitRequest,
    PipelineRequest,
    PipelineResponse,
    V1BatchRequest,
    V1BatchResponse,
    V1ExecuteRequest,
    V1ExecuteResponse,
)
from edgelite.protocol.hrana.values import dec_hook
from edgelite.protocol.hrana.ws_messages import ClientMsg, ServerMsg

__all__ = [
    "DEFAULT_LIMITS",
    "MALFORMED_JSON_CODE",
    "DecodeLimits",
    "decode_cursor_entry",
    "decode_cursor_head",
    "decode_cursor_request",
    "decode_error_body",
    "decode_legacy_request",
    "decode_pipeline_request",
    "decode_pipeline_response",
    "decode_v1_batch_request",
    "decode_v1_batch_response",
    "decode_v1_execute_request",
    "decode_v1_execute_response",
    "decode_ws_client_message",
    "decode_ws_server_message",
    "encode_cursor_entry",
    "encode_cursor_head",
    "encode_cursor_request",
    "encode_error_body",
    "encode_json",
    "encode_legacy_error",
    "encode_legacy_response",
    "encode_pipeline_request",
    "encode_pipeline_response",
    "encode_v1_batch_request",
    "encode_v1_batch_response",
    "encode_v1_execute_request",
    "encode_v1_execute_response",
    "encode_ws_client_message",
    "encode_ws_server_message",
]

MALFORMED_JSON_CODE: Final = "JSON_MALFORMED"

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds applied while decoding requests.

    ``statements_max`` bounds requests per pipeline, steps per batch and statements per
    legacy request; ``condition_depth_max`` bounds the nesting of batch conditions.
    """

    statements_max: int = STEPS_MAX_DEFAULT
    condition_depth_max: int = CONDITION_DEPTH_MAX_DEFAULT

    def __post_init__(self) -> None:
        if self.statements_max < 1 or self.condition_depth_max < 1:
            raise ValueError(f"limits must be positive: {self!r}")


DEFAULT_LIMITS: Final = DecodeLimits()

_ENCODER: Final = msgspec.json.Encoder()
prepare_plans(messages, ws_messages, legacy)


def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_, dec_hook=dec_hook)


_Dec = msgspec.json.Decoder


_PIPELINE_REQUEST: Final[_Dec[PipelineRequest]] = _decoder(PipelineRequest)
_PIPELINE_RESPONSE: Final[_Dec[PipelineResponse]] = _decoder(PipelineResponse)
_CURSOR_REQUEST: Final[_Dec[CursorRequest]] = _decoder(CursorRequest)
_CURSOR_HEAD: Final[_Dec[CursorHead]] = _decoder(CursorHead)
_CURSOR_ENTRY: Final[_Dec[CursorEntry]] = _decoder(CursorEntry)
_CLIENT_MSG: Final[_Dec[ClientMsg]] = _decoder(ClientMsg)
_SERVER_MSG: Final[_Dec[ServerMsg]] = _decoder(ServerMsg)
_V1_EXECUTE_REQUEST: Final[_Dec[V1ExecuteRequest]] = _decoder(V1ExecuteRequest)
_V1_EXECUTE_RESPONSE: Final[_Dec[V1ExecuteResponse]] = _decoder(V1ExecuteResponse)
_V1_BATCH_REQUEST: Final[_Dec[V1BatchRequest]] = _decoder(V1BatchRequest)
_V1_BATCH_RESPONSE: Final[_Dec[V1BatchResponse]] = _decoder(V1BatchResponse)
_ERROR: Final[_Dec[Error]] = _decoder(Error)
_LEGACY_REQUEST: Final[_Dec[LegacyRequest]] = _decoder(LegacyRequest)


def _decode(decoder: msgspec.json.Decoder[T], data: bytes | str, what: str) -> T:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"invalid {what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"malformed JSON in {what}: {exc}", code=MALFORMED_JSON_CODE) from None
    except UnicodeError:
        raise ProtocolError(f"{what} is not valid UTF-8", code=MALFORMED_JSON_CODE) from None
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply") from None


def encode_json(message: Any) -> bytes:
    """Any message (or list of messages) as compact JSON."""
    try:
        return _ENCODER.encode(to_wire(message))
    except UnicodeEncodeError:
        raise ProtocolError(
            "cannot send text containing a lone surrogate: it has no UTF-8 form"
        ) from None
    except RecursionError:
        raise ProtocolError("cannot send a message nested this deeply") from None
    except (TypeError, OverflowError) as exc:
        raise ProtocolError(f"cannot encode {type(message).__name__}: {exc}") from None


def _check_count(count: int, limit: int, what: str, path: str) -> None:
    if count > limit:
        raise ProtocolError(f"{count} {what}, more than the limit of {limit} - at `{path}`")


# --- /v2/pipeline and /v3/pipeline --------------------------------------------------------


def decode_pipeline_request(
    body: bytes | str, *, version: int = 3, limits: DecodeLimits = DEFAULT_LIMITS
) -> PipelineRequest:
    """A pipeline body, checked against ``limits`` and the rules of Hrana ``version``."""
    assert version in (2, 3), f"pipelines exist in Hrana 2 and 3, not {version}"
    request = _decode(_PIPELINE_REQUEST, body, "pipeline request")
    _check_count(len(request.requests), limits.statements_max, "requests", "$.requests")
    for index, stream_request in enumerate(request.requests):
        path = f"$.requests[{index}]"
        if isinstance(stream_request, ExecuteRequest):
            validate_stmt(stream_request.stmt, version, path=f"{path}.stmt")
        elif isinstance(stream_request, BatchRequest):
            validate_batch(
                stream_request.batch,
                version,
                steps_max=limits.statements_max,
                condition_depth_max=limits.condition_depth_max,
                path=f"{path}.batch",
            )
        elif isinstance(stream_request, GetAutocommitRequest) and version < 3:
            raise ProtocolError(
                "The `get_autocommit` request is only supported in protocol version "
                f"hrana3 and higher - at `{path}`"
            )
    return request


def encode_pipeline_response(response: PipelineResponse) -> bytes:
    return encode_json(response)


def encode_pipeline_request(request: PipelineRequest) -> bytes:
    return encode_json(request)


def decode_pipeline_response(body: bytes | str) -> PipelineResponse:
    return _decode(_PIPELINE_RESPONSE, body, "pipeline response")


# --- /v3/cursor ---------------------------------------------------------------------------


def decode_cursor_request(
    body: bytes | str, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> CursorRequest:
    request = _decode(_CURSOR_REQUEST, body, "cursor request")
    validate_batch(
        request.batch,
        3,
        steps_max=limits.statements_max,
        condition_depth_max=limits.condition_depth_max,
        path="$.batch",
    )
    return request


def encode_cursor_request(request: CursorRequest) -> bytes:
    return encode_json(request)


def encode_cursor_head(head: CursorHead) -> bytes:
    """The first line of a cursor response, newline included."""
    return encode_json(head) + b"\n"


def encode_cursor_entry(entry: CursorEntry) -> bytes:
    """One cursor entry line, newline included."""
    return encode_json(entry) + b"\n"


def decode_cursor_head(line: bytes | str) -> CursorHead:
    return _decode(_CURSOR_HEAD, line, "cursor response head")


def decode_cursor_entry(line: bytes | str) -> CursorEntry:
    return _decode(_CURSOR_ENTRY, line, "cursor entry")


# --- WebSocket ----------------------------------------------------------------------------


def decode_ws_client_message(text: str | bytes) -> ClientMsg:
    """A client frame; version rules and limits are applied by ``WsSession``."""
    return _decode(_CLIENT_MSG, text, "WebSocket message")


def encode_ws_server_message(message: ServerMsg) -> str:
    return encode_json(message).decode("utf-8")


def encode_ws_client_message(message: ClientMsg) -> str:
    return encode_json(message).decode("utf-8")


def decode_ws_server_message(text: str | bytes) -> ServerMsg:
    return _decode(_SERVER_MSG, text, "WebSocket message")


# --- /v1/execute and /v1/batch ------------------------------------------------------------


def decode_v1_execute_request(body: bytes | str) -> V1ExecuteRequest:
    request = _decode(_V1_EXECUTE_REQUEST, body, "execute request")
    validate_stmt(request.stmt, 1, path="$.stmt")
    return request


def decode_v1_batch_request(
    body: bytes | str, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> V1BatchRequest:
    request = _decode(_V1_BATCH_REQUEST, body, "batch request")
    validate_batch(
        request.batch,
        1,
        steps_max=limits.statements_max,
        condition_depth_max=limits.condition_depth_max,
        path="$.batch",
    )
    return request


def encode_v1_execute_response(response: V1ExecuteResponse) -> bytes:
    return encode_json(response)


def encode_v1_batch_response(response: V1BatchResponse) -> bytes:
    return encode_json(response)


def encode_v1_execute_request(request: V1ExecuteRequest) -> bytes:
    return encode_json(request)


def encode_v1_batch_request(request: V1BatchRequest) -> bytes:
    return encode_json(request)


def decode_v1_execute_response(body: bytes | str) -> V1ExecuteResponse:
    return _decode(_V1_EXECUTE_RESPONSE, body, "execute response")


def decode_v1_batch_response(body: bytes | str) -> V1BatchResponse:
    return _decode(_V1_BATCH_RESPONSE, body, "batch response")


def encode_error_body(error: Error) -> bytes:
    """A Hrana error as a JSON HTTP body (``STREAM_EXPIRED``, /v1 statement errors)."""
    return encode_json(error)


def decode_error_body(body: bytes | str) -> Error:
    return _decode(_ERROR, body, "error body")


# --- legacy POST / ------------------------------------------------------------------------


def decode_legacy_request(
    body: bytes | str, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> LegacyRequest:
    request = _decode(_LEGACY_REQUEST, body, "legacy request")
    _check_count(len(request.statements), limits.statements_max, "statements", "$.statements")
    return request


def encode_legacy_response(items: Sequence[LegacyResponseItem]) -> bytes:
    """The 200 body: one slot per statement (result, error, or null after an error)."""
    return encode_json(list(items))


def encode_legacy_error(message: str) -> bytes:
    """The 400 body ``{"error": message}``."""
    return encode_json(LegacyError(message))
