"""Hrana over WebSocket messages (protocol.md §4).

Client -> server: ``HelloMsg`` and ``RequestMsg``; server -> client: ``HelloOkMsg``,
``HelloErrorMsg``, ``ResponseOkMsg``, ``ResponseErrorMsg``. Stream, SQL and cursor ids
are client-chosen int32s. Responses whose shape equals the HTTP one (``execute``,
``batch``, ``sequence``, ``describe``, ``store_sql``, ``close_sql``, ``get_autocommit``)
reuse the structs of ``messages.py``, as do the connection-scoped ``store_sql`` and
``close_sql`` requests.

Minimum protocol version per request (the session enforces it): ``open_stream``,
``close_stream``, ``execute``, ``batch``: hrana1; ``sequence``, ``describe``,
``store_sql``, ``close_sql``: hrana2; ``get_autocommit``, ``open_cursor``,
``fetch_cursor``, ``close_cursor``: hrana3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeAlias

from edgelite.protocol.hrana.messages import (
    Batch,
    BatchResponse,
    CloseSqlRequest,
    CloseSqlResponse,
    CursorEntry,
    DescribeResponse,
    Error,
    ExecuteResponse,
    GetAutocommitResponse,
    Int32,
    InvalidMessageError,
    SequenceResponse,
    Stmt,
    StoreSqlRequest,
    StoreSqlResponse,
    TypedMessage,
    UInt32,
)
from edgelite.protocol.hrana.values import UInt64Decimal

__all__ = [
    "WS_REQUEST_MIN_VERSION",
    "ClientMsg",
    "CloseCursorRequest",
    "CloseCursorResponse",
    "CloseStreamRequest",
    "CloseStreamResponse",
    "FetchCursorRequest",
    "FetchCursorResponse",
    "HelloErrorMsg",
    "HelloMsg",
    "HelloOkMsg",
    "OpenCursorRequest",
    "OpenCursorResponse",
    "OpenStreamRequest",
    "OpenStreamResponse",
    "RequestMsg",
    "ResponseErrorMsg",
    "ResponseOkMsg",
    "ServerMsg",
    "WsBatchRequest",
    "WsDescribeRequest",
    "WsExecuteRequest",
    "WsGetAutocommitRequest",
    "WsRequest",
    "WsResponse",
    "WsSequenceRequest",
]


def _require_sql_xor_id(sql: str | None, sql_id: int | None) -> None:
    if (sql is None) == (sql_id is None):
        raise InvalidMessageError("give exactly one of `sql` and `sql_id`")


# --- requests -----------------------------------------------------------------------------


class OpenStreamRequest(TypedMessage, frozen=True, tag="open_stream"):
    stream_id: Int32


class CloseStreamRequest(TypedMessage, frozen=True, tag="close_stream"):
    stream_id: Int32


class WsExecuteRequest(TypedMessage, frozen=True, tag="execute"):
    stream_id: Int32
    stmt: Stmt


class WsBatchRequest(TypedMessage, frozen=True, tag="batch"):
    stream_id: Int32
    batch: Batch


class WsSequenceRequest(TypedMessage, frozen=True, tag="sequence"):
    stream_id: Int32
    sql: str | None = None
    sql_id: Int32 | None = None
    replication_index: UInt64Decimal | None = None

    def __post_init__(self) -> None:
        _require_sql_xor_id(self.sql, self.sql_id)


class WsDescribeRequest(TypedMessage, frozen=True, tag="describe"):
    stream_id: Int32
    sql: str | None = None
    sql_id: Int32 | None = None
    replication_index: UInt64Decimal | None = None

    def __post_init__(self) -> None:
        _require_sql_xor_id(self.sql, self.sql_id)


class WsGetAutocommitRequest(TypedMessage, frozen=True, tag="get_autocommit"):
    stream_id: Int32


class OpenCursorRequest(TypedMessage, frozen=True, tag="open_cursor"):
    stream_id: Int32
    cursor_id: Int32
    batch: Batch


class FetchCursorRequest(TypedMessage, frozen=True, tag="fetch_cursor"):
    cursor_id: Int32
    max_count: UInt32


class CloseCursorRequest(TypedMessage, frozen=True, tag="close_cursor"):
    cursor_id: Int32


WsRequest: TypeAlias = (
    OpenStreamRequest
    | CloseStreamRequest
    | WsExecuteRequest
    | WsBatchRequest
    | WsSequenceRequest
    | WsDescribeRequest
    | StoreSqlRequest
    | CloseSqlRequest
    | WsGetAutocommitRequest
    | OpenCursorRequest
    | FetchCursorRequest
    | CloseCursorRequest
)

WS_REQUEST_MIN_VERSION: Final[dict[type, int]] = {
    OpenStreamRequest: 1,
    CloseStreamRequest: 1,
    WsExecuteRequest: 1,
    WsBatchRequest: 1,
    WsSequenceRequest: 2,
    WsDescribeRequest: 2,
    StoreSqlRequest: 2,
    CloseSqlRequest: 2,
    WsGetAutocommitRequest: 3,
    OpenCursorRequest: 3,
    FetchCursorRequest: 3,
    CloseCursorRequest: 3,
}


# --- responses ----------------------------------------------------------------------------


class OpenStreamResponse(TypedMessage, frozen=True, tag="open_stream"):
    pass


class CloseStreamResponse(TypedMessage, frozen=True, tag="close_stream"):
    pass


class OpenCursorResponse(TypedMessage, frozen=True, tag="open_cursor"):
    pass


class FetchCursorResponse(TypedMessage, frozen=True, tag="fetch_cursor"):
    """Up to ``max_count`` entries; ``done`` once the cursor has no more."""

    entries: Sequence[CursorEntry]
    done: bool


class CloseCursorResponse(TypedMessage, frozen=True, tag="close_cursor"):
    pass


WsResponse: TypeAlias = (
    OpenStreamResponse
    | CloseStreamResponse
    | ExecuteResponse
    | BatchResponse
    | SequenceResponse
    | DescribeResponse
    | StoreSqlResponse
    | CloseSqlResponse
    | GetAutocommitResponse
    | OpenCursorResponse
    | FetchCursorResponse
    | CloseCursorResponse
)


# --- top-level messages -------------------------------------------------------------------


class HelloMsg(TypedMessage, frozen=True, tag="hello"):
    """First message; ``jwt`` may be null or absent. Hrana 2+ allows it again later."""

    jwt: str | None = None


class RequestMsg(TypedMessage, frozen=True, tag="request"):
    request_id: Int32
    request: WsRequest


ClientMsg: TypeAlias = HelloMsg | RequestMsg


class HelloOkMsg(TypedMessage, frozen=True, tag="hello_ok"):
    pass


class HelloErrorMsg(TypedMessage, frozen=True, tag="hello_error"):
    error: Error


class ResponseOkMsg(TypedMessage, frozen=True, tag="response_ok"):
    request_id: Int32
    response: WsResponse


class ResponseErrorMsg(TypedMessage, frozen=True, tag="response_error"):
    request_id: Int32
    error: Error


ServerMsg: TypeAlias = HelloOkMsg | HelloErrorMsg | ResponseOkMsg | ResponseErrorMsg
