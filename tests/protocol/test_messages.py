"""Messages: Hypothesis round trips through the codec, invariants, and the encoder's
fast paths agreeing with its generic plans."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgelite.errors import ProtocolError
from edgelite.protocol.hrana import _wire
from edgelite.protocol.hrana import json_codec as codec
from edgelite.protocol.hrana.messages import (
    Batch,
    BatchRequest,
    BatchResponse,
    BatchResult,
    BatchStep,
    CloseRequest,
    CloseResponse,
    Col,
    CondAnd,
    CondError,
    CondIsAutocommit,
    CondNot,
    CondOk,
    CondOr,
    CursorRequest,
    DescribeCol,
    DescribeParam,
    DescribeResponse,
    DescribeResult,
    Error,
    ErrorEntry,
    ExecuteRequest,
    ExecuteResponse,
    GetAutocommitResponse,
    InvalidMessageError,
    NamedArg,
    PipelineRequest,
    PipelineResponse,
    RowEntry,
    SequenceRequest,
    StepBeginEntry,
    StepEndEntry,
    StepErrorEntry,
    Stmt,
    StmtResult,
    StoreSqlRequest,
    StreamResultError,
    StreamResultOk,
    type_tag,
)
from edgelite.protocol.hrana.values import INT64_MAX, INT64_MIN
from edgelite.protocol.hrana.ws_messages import (
    CloseCursorResponse,
    CloseStreamResponse,
    FetchCursorResponse,
    HelloErrorMsg,
    HelloMsg,
    HelloOkMsg,
    OpenCursorRequest,
    OpenStreamResponse,
    RequestMsg,
    ResponseErrorMsg,
    ResponseOkMsg,
    WsBatchRequest,
    WsExecuteRequest,
)

# Values whose == is exact (no -0.0/NaN subtleties: test_values covers those).
values = st.one_of(
    st.none(),
    st.integers(INT64_MIN, INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != 0 or str(f) == "0.0"),
    st.text(max_size=8),
    st.binary(max_size=8),
)
names = st.text(max_size=6)
int32 = st.integers(-(2**31), 2**31 - 1)
uint64 = st.integers(0, 2**63 - 1)
errors = st.builds(Error, names, st.sampled_from(["SQLITE_CONSTRAINT", "SQL_INPUT_ERROR"]))
cols = st.lists(st.builds(Col, st.none() | names, st.none() | names), max_size=3)


@st.composite
def stmts(draw: st.DrawFn, *, allow_sql_id: bool = True) -> Stmt:
    use_id = allow_sql_id and draw(st.booleans())
    return Stmt(
        sql=None if use_id else draw(names),
        sql_id=draw(int32) if use_id else None,
        args=draw(st.lists(values, max_size=3)),
        named_args=draw(st.lists(st.builds(NamedArg, names, values), max_size=2)),
        want_rows=draw(st.booleans()),
        replication_index=draw(st.none() | uint64),
    )


def conditions(step_count: int) -> st.SearchStrategy[Any]:
    """Conditions that only reference steps before ``step_count``."""
    if step_count == 0:
        leaves: st.SearchStrategy[Any] = st.just(CondIsAutocommit())
    else:
        steps = st.integers(0, step_count - 1)
        leaves = (
            st.builds(CondOk, steps) | st.builds(CondError, steps) | st.just(CondIsAutocommit())
        )
    return st.recursive(
        leaves,
        lambda children: (
            st.builds(CondNot, children)
            | st.builds(CondAnd, st.lists(children, max_size=3))
            | st.builds(CondOr, st.lists(children, max_size=3))
        ),
        max_leaves=6,
    )


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    count = draw(st.integers(0, 4))
    steps = [
        BatchStep(draw(stmts()), draw(st.none() | conditions(index))) for index in range(count)
    ]
    return Batch(steps, draw(st.none() | uint64))


stmt_results = st.builds(
    StmtResult,
    cols,
    st.lists(st.lists(values, min_size=1, max_size=3), max_size=3),
    uint64,
    st.none() | st.integers(INT64_MIN, INT64_MAX),
    st.none() | uint64,
)


@st.composite
def batch_results(draw: st.DrawFn) -> BatchResult:
    outcomes = draw(st.lists(st.sampled_from(["ok", "error", "skipped"]), max_size=4))
    results = [draw(stmt_results) if o == "ok" else None for o in outcomes]
    step_errors = [draw(errors) if o == "error" else None for o in outcomes]
    return BatchResult(results, step_errors, draw(st.none() | uint64))


describe_results = st.builds(
    DescribeResult,
    st.lists(st.builds(DescribeParam, st.none() | names), max_size=3),
    st.lists(st.builds(DescribeCol, names, st.none() | names), max_size=3),
    st.booleans(),
    st.booleans(),
)
cursor_entries = st.one_of(
    st.builds(StepBeginEntry, st.integers(0, 100), cols),
    st.builds(StepEndEntry, uint64, st.none() | st.integers(INT64_MIN, INT64_MAX)),
    st.builds(StepErrorEntry, st.integers(0, 100), errors),
    st.builds(RowEntry, st.lists(values, max_size=3)),
    st.builds(ErrorEntry, errors),
)
stream_requests = st.one_of(
    st.builds(ExecuteRequest, stmts()),
    st.builds(BatchRequest, batches()),
    st.builds(SequenceRequest, names),
    st.builds(StoreSqlRequest, int32, names),
    st.just(CloseRequest()),
)
stream_responses = st.one_of(
    st.builds(ExecuteResponse, stmt_results),
    st.builds(BatchResponse, batch_results()),
    st.builds(DescribeResponse, describe_results),
    st.builds(GetAutocommitResponse, st.booleans()),
    st.just(CloseResponse()),
)

ws_responses = st.one_of(
    st.builds(ExecuteResponse, stmt_results),
    st.builds(BatchResponse, batch_results()),
    st.builds(DescribeResponse, describe_results),
    st.builds(GetAutocommitResponse, st.booleans()),
    st.sampled_from([OpenStreamResponse(), CloseStreamResponse(), CloseCursorResponse()]),
)


@given(
    st.builds(
        PipelineRequest, baton=st.none() | names, requests=st.lists(stream_requests, max_size=4)
    )
)
def test_pipeline_request_round_trip(request: PipelineRequest) -> None:
    assert codec.decode_pipeline_request(codec.encode_pipeline_request(request)) == request


@given(
    st.builds(
        PipelineResponse,
        baton=st.none() | names,
        base_url=st.none() | names,
        results=st.lists(
            st.builds(StreamResultOk, stream_responses) | st.builds(StreamResultError, errors),
            max_size=4,
        ),
    )
)
def test_pipeline_response_round_trip(response: PipelineResponse) -> None:
    assert codec.decode_pipeline_response(codec.encode_pipeline_response(response)) == response


@given(st.builds(CursorRequest, baton=st.none() | names, batch=batches()), cursor_entries)
def test_cursor_round_trip(request: CursorRequest, entry: Any) -> None:
    assert codec.decode_cursor_request(codec.encode_cursor_request(request)) == request
    assert codec.decode_cursor_entry(codec.encode_cursor_entry(entry)) == entry


@given(
    st.one_of(
        st.builds(HelloMsg, st.none() | names),
        st.builds(RequestMsg, int32, st.builds(WsExecuteRequest, int32, stmts())),
        st.builds(RequestMsg, int32, st.builds(WsBatchRequest, int32, batches())),
        st.builds(RequestMsg, int32, st.builds(OpenCursorRequest, int32, int32, batches())),
    ),
    st.one_of(
        st.just(HelloOkMsg()),
        st.builds(HelloErrorMsg, errors),
        st.builds(ResponseOkMsg, int32, ws_responses),
        st.builds(
            ResponseOkMsg,
            int32,
            st.builds(FetchCursorResponse, st.lists(cursor_entries, max_size=4), st.booleans()),
        ),
        st.builds(ResponseErrorMsg, int32, errors),
    ),
)
def test_ws_messages_round_trip(client: Any, server: Any) -> None:
    assert codec.decode_ws_client_message(codec.encode_ws_client_message(client)) == client
    assert codec.decode_ws_server_message(codec.encode_ws_server_message(server)) == server


# --- invariants ---------------------------------------------------------------------------


def test_stmt_needs_exactly_one_of_sql_and_sql_id() -> None:
    with pytest.raises(InvalidMessageError, match="neither"):
        Stmt()
    with pytest.raises(InvalidMessageError, match="both"):
        Stmt("x", sql_id=1)
    assert isinstance(InvalidMessageError("x"), ProtocolError)


def test_explicit_nulls_become_defaults() -> None:
    body = (
        b'{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"x","sql_id":null,'
        b'"args":null,"named_args":null,"want_rows":null,"replication_index":null}},'
        b'{"type":"batch","batch":{"steps":[{"stmt":{"sql":"y"},"condition":null}],'
        b'"replication_index":null}}]}'
    )
    execute, batch = codec.decode_pipeline_request(body).requests
    assert execute == ExecuteRequest(Stmt("x", args=(), named_args=(), want_rows=True))
    assert batch == BatchRequest(Batch([BatchStep(Stmt("y"))]))


def test_batch_result_lists_must_have_equal_length() -> None:
    with pytest.raises(InvalidMessageError, match="one entry per step"):
        BatchResult([None], [])
    body = b'{"result":{"step_results":[null],"step_errors":[]}}'
    with pytest.raises(ProtocolError, match=r"one entry per step - at `\$\.result`"):
        codec.decode_v1_batch_response(body)


def test_messages_are_frozen() -> None:
    stmt = Stmt("x")
    with pytest.raises(AttributeError):
        stmt.sql = "y"  # type: ignore[misc]


def test_type_tag() -> None:
    assert type_tag(ExecuteRequest(Stmt("x"))) == "execute"
    assert type_tag(CondIsAutocommit()) == "is_autocommit"


# --- the encoder's fast paths agree with the generic plans --------------------------------


@given(stmt_results)
def test_fast_paths_match_generic_plans(result: StmtResult) -> None:
    samples: list[Any] = [
        result,
        ExecuteResponse(result),
        StreamResultOk(ExecuteResponse(result)),
        StreamResultOk(CloseResponse()),
        PipelineResponse(results=[StreamResultOk(ExecuteResponse(result))]),
        RowEntry(list(result.rows[0]) if result.rows else []),
        ResponseOkMsg(1, ExecuteResponse(result)),
        ResponseOkMsg(1, CloseResponse()),
    ]
    for sample in samples:
        fast = _wire.to_wire(sample)
        generic = _wire.plan_convert(sample)
        assert msgspec.json.encode(fast) == msgspec.json.encode(generic), type(sample)


def test_messages_without_values_are_not_copied() -> None:
    cond = CondAnd([CondNot(CondOk(0)), CondOr([])])
    assert _wire.to_wire(cond) is cond
    assert _wire.to_wire(StreamResultOk(CloseResponse())).response is not None
    close = StreamResultOk(CloseResponse())
    assert _wire.to_wire(close) is close


def test_every_message_class_is_planned_at_import() -> None:
    from edgelite.protocol.hrana import legacy, messages, ws_messages

    for module in (messages, ws_messages, legacy):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, msgspec.Struct):
                assert value in _wire._PLANS, value
