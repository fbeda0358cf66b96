"""Hrana messages shared by every transport, plus Hrana over HTTP (v1, v2, v3).

Every message is a frozen ``msgspec.Struct``. Unknown JSON fields are ignored (forward
compatibility is required by the spec). Messages told apart by a ``"type"`` field are
tagged structs; the tag is the wire name (``ExecuteRequest`` <-> ``"execute"``).

Values inside messages are Python values (``SqlValue``); 64-bit integers that travel as
decimal strings (``last_insert_rowid``, ``replication_index``) are Python ``int``s. The
JSON codec converts both ways (``values.py``). Array fields are typed ``Sequence`` so
callers may pass lists or tuples; decoded messages hold lists. Treat them as immutable.

Invariants checked on construction and on decoding (``__post_init__``):

- ``Stmt``, ``SequenceRequest``, ``DescribeRequest``: exactly one of ``sql`` / ``sql_id``.
- ``Stmt``: ``args`` and ``named_args`` are sequences and ``want_rows`` a bool even if
  the JSON had an explicit ``null`` (the Rust-core client sends explicit nulls).
- ``BatchResult``: ``step_results`` and ``step_errors`` have the same length.

A violation raises ``InvalidMessageError`` (a ``ProtocolError``); while decoding, msgspec
adds the JSON path to its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import msgspec

from edgelite.errors import ProtocolError
from edgelite.protocol.hrana.values import Int64Decimal, UInt64Decimal, Value

__all__ = [
    "Batch",
    "BatchCond",
    "BatchRequest",
    "BatchResponse",
    "BatchResult",
    "BatchStep",
    "CloseRequest",
    "CloseResponse",
    "CloseSqlRequest",
    "CloseSqlResponse",
    "Col",
    "CondAnd",
    "CondError",
    "CondIsAutocommit",
    "CondNot",
    "CondOk",
    "CondOr",
    "CursorEntry",
    "CursorHead",
    "CursorRequest",
    "DescribeCol",
    "DescribeParam",
    "DescribeRequest",
    "DescribeResponse",
    "DescribeResult",
    "Error",
    "ErrorEntry",
    "ExecuteRequest",
    "ExecuteResponse",
    "GetAutocommitRequest",
    "GetAutocommitResponse",
    "Int32",
    "InvalidMessageError",
    "Message",
    "NamedArg",
    "PipelineRequest",
    "PipelineResponse",
    "ReplicationIndexEntry",
    "RowEntry",
    "SequenceRequest",
    "SequenceResponse",
    "StepBeginEntry",
    "StepEndEntry",
    "StepErrorEntry",
    "Stmt",
    "StmtResult",
    "StoreSqlRequest",
    "StoreSqlResponse",
    "StreamRequest",
    "StreamResponse",
    "StreamResult",
    "StreamResultError",
    "StreamResultOk",
    "TypedMessage",
    "UInt32",
    "UInt64",
    "V1BatchRequest",
    "V1BatchResponse",
    "V1ExecuteRequest",
    "V1ExecuteResponse",
    "type_tag",
]

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
UInt32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
UInt64 = Annotated[int, msgspec.Meta(ge=0)]  # msgspec bounds must fit in int64


class InvalidMessageError(ProtocolError, ValueError):
    """A message breaks an invariant of its type.

    Also a ``ValueError`` so that msgspec, when it is raised while decoding, reports it
    as a validation error with the JSON path of the offending object.
    """


class Message(msgspec.Struct, frozen=True, gc=False):
    """Base of every Hrana message: frozen, acyclic, unknown JSON fields ignored."""


class TypedMessage(Message, frozen=True, tag_field="type"):
    """A message whose JSON object carries its kind in ``"type"``."""


def type_tag(message: TypedMessage) -> str:
    """The wire ``"type"`` of a tagged message (``ExecuteRequest(...)`` -> ``"execute"``)."""
    tag = type(message).__struct_config__.tag
    assert isinstance(tag, str), f"{type(message).__name__} has no string tag"
    return tag


def _require_sql_xor_id(sql: str | None, sql_id: int | None) -> None:
    if sql is not None and sql_id is not None:
        raise InvalidMessageError("`sql` and `sql_id` are both given; give exactly one")
    if sql is None and sql_id is None:
        raise InvalidMessageError("neither `sql` nor `sql_id` is given; give exactly one")


# --- statements ---------------------------------------------------------------------------

if TYPE_CHECKING:
    _ArgsField: TypeAlias = Sequence[Value]
    _NamedArgsField: TypeAlias = Sequence["NamedArg"]
    _WantRowsField: TypeAlias = bool
else:
    # msgspec sees the nullable form (explicit JSON null is accepted); __post_init__
    # replaces null with the default, so the fields are never None afterwards.
    _ArgsField = Sequence[Value] | None
    _NamedArgsField = Sequence["NamedArg"] | None
    _WantRowsField = bool | None


class Col(Message, frozen=True):
    """A result column: name (or alias) and declared type (``None`` for expressions)."""

    name: str | None = None
    decltype: str | None = None


class NamedArg(Message, frozen=True):
    """A named argument; ``name`` is sent as the user typed it, with or without prefix."""

    name: str
    value: Value


class Stmt(Message, frozen=True):
    """One SQL statement with its arguments (protocol.md §1.2)."""

    sql: str | None = None
    sql_id: Int32 | None = None
    args: _ArgsField = ()
    named_args: _NamedArgsField = ()
    want_rows: _WantRowsField = True
    replication_index: UInt64Decimal | None = None

    def __post_init__(self) -> None:
        _require_sql_xor_id(self.sql, self.sql_id)
        raw: Any = self  # the declared types hide that JSON null may have arrived
        if raw.args is None:
            msgspec.structs.force_setattr(self, "args", ())
        if raw.named_args is None:
            msgspec.structs.force_setattr(self, "named_args", ())
        if raw.want_rows is None:
            msgspec.structs.force_setattr(self, "want_rows", True)


class CondOk(TypedMessage, frozen=True, tag="ok"):
    """True when step ``step`` ran and succeeded."""

    step: int


class CondError(TypedMessage, frozen=True, tag="error"):
    """True when step ``step`` ran and failed (a skipped step is neither ok nor error)."""

    step: int


class CondNot(TypedMessage, frozen=True, tag="not"):
    cond: BatchCond


class CondAnd(TypedMessage, frozen=True, tag="and"):
    """Conjunction; an empty list is true."""

    conds: Sequence[BatchCond]


class CondOr(TypedMessage, frozen=True, tag="or"):
    """Disjunction; an empty list is false."""

    conds: Sequence[BatchCond]


class CondIsAutocommit(TypedMessage, frozen=True, tag="is_autocommit"):
    """True when the connection is outside an explicit transaction (Hrana 3 only)."""


BatchCond: TypeAlias = CondOk | CondError | CondNot | CondAnd | CondOr | CondIsAutocommit


class BatchStep(Message, frozen=True):
    stmt: Stmt
    condition: BatchCond | None = None


class Batch(Message, frozen=True):
    """Steps run in order; each runs only if its condition (if any) is true."""

    steps: Sequence[BatchStep]
    replication_index: UInt64Decimal | None = None


# --- results ------------------------------------------------------------------------------


class Error(Message, frozen=True):
    """A Hrana error. The server always sends ``code`` (the Rust-core client needs it)."""

    message: str
    code: str | None = None


class StmtResult(Message, frozen=True):
    """The outcome of one statement (protocol.md §1.3).

    ``affected_row_count`` counts changes of INSERT/UPDATE/DELETE only; ``last_insert_rowid``
    is set for INSERT only (sent as a decimal string).
    """

    cols: Sequence[Col]
    rows: Sequence[Sequence[Value]]
    affected_row_count: UInt64 = 0
    last_insert_rowid: Int64Decimal | None = None
    replication_index: UInt64Decimal | None = None
    rows_read: UInt64 = 0
    rows_written: UInt64 = 0
    query_duration_ms: float = 0.0


class BatchResult(Message, frozen=True):
    """One entry per step in both lists; a skipped step is ``None`` in both."""

    step_results: Sequence[StmtResult | None]
    step_errors: Sequence[Error | None]
    replication_index: UInt64Decimal | None = None

    def __post_init__(self) -> None:
        if len(self.step_results) != len(self.step_errors):
            raise InvalidMessageError(
                f"`step_results` has {len(self.step_results)} entries but `step_errors` "
                f"has {len(self.step_errors)}; they must have one entry per step"
            )


class DescribeParam(Message, frozen=True):
    """Parameter k+1 of a statement; ``name`` has its prefix (``:n``), None for ``?``."""

    name: str | None = None


class DescribeCol(Message, frozen=True):
    name: str
    decltype: str | None = None


class DescribeResult(Message, frozen=True):
    params: Sequence[DescribeParam]
    cols: Sequence[DescribeCol]
    is_explain: bool
    is_readonly: bool


# --- cursor entries (Hrana 3) -------------------------------------------------------------


class StepBeginEntry(TypedMessage, frozen=True, tag="step_begin"):
    step: UInt32
    cols: Sequence[Col]


class StepEndEntry(TypedMessage, frozen=True, tag="step_end"):
    affected_row_count: UInt64 = 0
    last_insert_rowid: Int64Decimal | None = None


class StepErrorEntry(TypedMessage, frozen=True, tag="step_error"):
    step: UInt32
    error: Error


class RowEntry(TypedMessage, frozen=True, tag="row"):
    row: Sequence[Value]


class ErrorEntry(TypedMessage, frozen=True, tag="error"):
    """The whole batch failed; always the last entry."""

    error: Error


class ReplicationIndexEntry(TypedMessage, frozen=True, tag="replication_index"):
    """Sent by sqld at the end of a cursor (not in the spec). Decoded, never emitted."""

    replication_index: UInt64Decimal | None = None


CursorEntry: TypeAlias = (
    StepBeginEntry | StepEndEntry | StepErrorEntry | RowEntry | ErrorEntry | ReplicationIndexEntry
)


# --- HTTP stream requests and responses (v2, v3) ------------------------------------------


class CloseRequest(TypedMessage, frozen=True, tag="close"):
    pass


class ExecuteRequest(TypedMessage, frozen=True, tag="execute"):
    stmt: Stmt


class BatchRequest(TypedMessage, frozen=True, tag="batch"):
    batch: Batch


class SequenceRequest(TypedMessage, frozen=True, tag="sequence"):
    """Run a ``;``-separated script without arguments, stopping at the first error."""

    sql: str | None = None
    sql_id: Int32 | None = None
    replication_index: UInt64Decimal | None = None

    def __post_init__(self) -> None:
        _require_sql_xor_id(self.sql, self.sql_id)


class DescribeRequest(TypedMessage, frozen=True, tag="describe"):
    sql: str | None = None
    sql_id: Int32 | None = None
    replication_index: UInt64Decimal | None = None

    def __post_init__(self) -> None:
        _require_sql_xor_id(self.sql, self.sql_id)


class StoreSqlRequest(TypedMessage, frozen=True, tag="store_sql"):
    """Also a WebSocket request (connection scope there)."""

    sql_id: Int32
    sql: str


class CloseSqlRequest(TypedMessage, frozen=True, tag="close_sql"):
    """Also a WebSocket request. Closing an unknown id is not an error."""

    sql_id: Int32


class GetAutocommitRequest(TypedMessage, frozen=True, tag="get_autocommit"):
    """Hrana 3 only."""


StreamRequest: TypeAlias = (
    CloseRequest
    | ExecuteRequest
    | BatchRequest
    | SequenceRequest
    | DescribeRequest
    | StoreSqlRequest
    | CloseSqlRequest
    | GetAutocommitRequest
)


class CloseResponse(TypedMessage, frozen=True, tag="close"):
    pass


class ExecuteResponse(TypedMessage, frozen=True, tag="execute"):
    """Also the WebSocket ``execute`` response."""

    result: StmtResult


class BatchResponse(TypedMessage, frozen=True, tag="batch"):
    """Also the WebSocket ``batch`` response."""

    result: BatchResult


class SequenceResponse(TypedMessage, frozen=True, tag="sequence"):
    pass


class DescribeResponse(TypedMessage, frozen=True, tag="describe"):
    result: DescribeResult


class StoreSqlResponse(TypedMessage, frozen=True, tag="store_sql"):
    pass


class CloseSqlResponse(TypedMessage, frozen=True, tag="close_sql"):
    pass


class GetAutocommitResponse(TypedMessage, frozen=True, tag="get_autocommit"):
    is_autocommit: bool


StreamResponse: TypeAlias = (
    CloseResponse
    | ExecuteResponse
    | BatchResponse
    | SequenceResponse
    | DescribeResponse
    | StoreSqlResponse
    | CloseSqlResponse
    | GetAutocommitResponse
)


class StreamResultOk(TypedMessage, frozen=True, tag="ok"):
    """``response`` has the same ``type`` as its request (clients check)."""

    response: StreamResponse


class StreamResultError(TypedMessage, frozen=True, tag="error"):
    error: Error


StreamResult: TypeAlias = StreamResultOk | StreamResultError


class PipelineRequest(Message, frozen=True, kw_only=True):
    """``POST /v2/pipeline`` and ``/v3/pipeline`` body. No baton: open a new stream."""

    baton: str | None = None
    requests: Sequence[StreamRequest]


class PipelineResponse(Message, frozen=True, kw_only=True):
    """One result per request, in order. ``baton`` is None once the stream is closed."""

    baton: str | None = None
    base_url: str | None = None
    results: Sequence[StreamResult]


class CursorRequest(Message, frozen=True, kw_only=True):
    """``POST /v3/cursor`` body."""

    baton: str | None = None
    batch: Batch


class CursorHead(Message, frozen=True, kw_only=True):
    """First line of a ``/v3/cursor`` response; cursor entries follow, one per line."""

    baton: str | None = None
    base_url: str | None = None


# --- Hrana over HTTP v1 (stateless, /v1/execute and /v1/batch) ----------------------------


class V1ExecuteRequest(Message, frozen=True):
    stmt: Stmt


class V1ExecuteResponse(Message, frozen=True):
    result: StmtResult


class V1BatchRequest(Message, frozen=True):
    batch: Batch


class V1BatchResponse(Message, frozen=True):
    result: BatchResult
