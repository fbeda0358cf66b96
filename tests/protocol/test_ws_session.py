"""The WebSocket session state machine, driven by scripted frame sequences."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgelite.protocol.hrana.json_codec import decode_ws_server_message
from edgelite.protocol.hrana.messages import (
    Error,
    ExecuteResponse,
    GetAutocommitResponse,
    SequenceResponse,
    Stmt,
    StmtResult,
)
from edgelite.protocol.hrana.ws_messages import (
    CloseStreamResponse,
    OpenStreamResponse,
    ResponseErrorMsg,
    ResponseOkMsg,
    WsDescribeRequest,
    WsExecuteRequest,
)
from edgelite.protocol.hrana.ws_session import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    Close,
    Hello,
    RequestEvent,
    Send,
    SessionState,
    WsSession,
    negotiate_subprotocol,
    parse_subprotocol_header,
    unsupported_subprotocol_message,
)


def _frame(document: dict[str, Any]) -> str:
    return json.dumps(document)


def _request(request_id: int, request: dict[str, Any]) -> str:
    return _frame({"type": "request", "request_id": request_id, "request": request})


def _open(request_id: int, stream_id: int) -> str:
    return _request(request_id, {"type": "open_stream", "stream_id": stream_id})


def _execute(request_id: int, stream_id: int, **stmt: Any) -> str:
    return _request(request_id, {"type": "execute", "stream_id": stream_id, "stmt": stmt})


HELLO = _frame({"type": "hello", "jwt": None})


def _session(subprotocol: str = "hrana2", **options: Any) -> WsSession:
    session = WsSession(subprotocol, **options)
    assert session.receive(HELLO) == [Hello(None)]
    session.hello_ok()
    return session


def _single(events: list[Any]) -> Any:
    assert len(events) == 1, events
    return events[0]


def _closed_with(session: WsSession, frame: str, code: int, reason: str) -> None:
    event = _single(session.receive(frame))
    assert isinstance(event, Close), event
    assert event.code == code
    assert reason in event.reason, event.reason
    assert session.state is SessionState.CLOSED
    assert session.receive(HELLO) == []
    session.check_invariants()


# --- subprotocol negotiation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([], "hrana1"),
        (["hrana2", "hrana1"], "hrana2"),
        (["hrana1", "hrana2"], "hrana2"),
        (["hrana2"], "hrana2"),
        (["hrana3-protobuf", "hrana3", "hrana2"], "hrana3"),
        (["hrana1"], "hrana1"),
        (["graphql-ws"], None),
        (["hrana3-protobuf"], None),
    ],
)
def test_negotiation(offered: list[str], chosen: str | None) -> None:
    assert negotiate_subprotocol(offered) == chosen


def test_header_parsing_and_refusal_message() -> None:
    assert parse_subprotocol_header("hrana2, hrana1") == ["hrana2", "hrana1"]
    assert parse_subprotocol_header("") == parse_subprotocol_header(None) == []
    assert unsupported_subprotocol_message() == (
        "Only these WebSocket subprotocols are supported: hrana3, hrana2, hrana1"
    )
    with pytest.raises(ValueError, match="unsupported subprotocol"):
        WsSession("hrana3-protobuf")


# --- hello and auth -----------------------------------------------------------------------


def test_request_before_hello_closes_with_1008() -> None:
    _closed_with(WsSession("hrana2"), _open(0, 0), CLOSE_POLICY_VIOLATION, "before hello")


def test_hello_twice_is_a_violation_in_hrana1() -> None:
    session = _session("hrana1")
    _closed_with(session, HELLO, CLOSE_POLICY_VIOLATION, "only supported in hrana2")


@pytest.mark.parametrize("subprotocol", ["hrana2", "hrana3"])
def test_re_hello_re_authenticates_in_hrana2_and_later(subprotocol: str) -> None:
    session = _session(subprotocol)
    assert session.receive(_frame({"type": "hello", "jwt": "new"})) == [Hello("new")]
    assert session.state is SessionState.AUTHENTICATING
    assert decode_ws_server_message(session.hello_ok()).__class__.__name__ == "HelloOkMsg"
    assert session.state is SessionState.AUTHENTICATED


def test_requests_may_follow_hello_before_it_is_answered() -> None:
    session = WsSession("hrana2")
    assert session.receive(_frame({"type": "hello"})) == [Hello(None)]
    event = _single(session.receive(_open(0, 0)))
    assert isinstance(event, RequestEvent)


def test_hello_error_ends_the_session() -> None:
    session = WsSession("hrana2")
    session.receive(HELLO)
    text = session.hello_error(
        Error("Authentication failed: The JWT is invalid", "AUTH_JWT_INVALID")
    )
    assert json.loads(text) == {
        "type": "hello_error",
        "error": {
            "message": "Authentication failed: The JWT is invalid",
            "code": "AUTH_JWT_INVALID",
        },
    }
    assert session.state is SessionState.CLOSED
    assert session.receive(_open(0, 0)) == []


# --- malformed frames ---------------------------------------------------------------------


def test_undecodable_json_closes_with_1007() -> None:
    _closed_with(_session(), "{not json", CLOSE_INVALID_PAYLOAD, "malformed JSON")


def test_unknown_message_and_request_types_close_with_1008() -> None:
    _closed_with(_session(), _frame({"type": "bye"}), CLOSE_POLICY_VIOLATION, "Invalid value 'bye'")
    _closed_with(_session(), _request(0, {"type": "nope"}), CLOSE_POLICY_VIOLATION, "nope")


def test_binary_frames_close_with_1003() -> None:
    event = _single(_session().receive_binary(b"\x00"))
    assert event == Close(
        CLOSE_UNSUPPORTED_DATA, "hrana2 uses text frames; received a binary frame"
    )


def test_close_reason_fits_a_control_frame() -> None:
    session = _session()
    event = _single(session.receive(_request(0, {"type": "x" * 1000})))
    assert isinstance(event, Close)
    assert len(event.reason.encode()) <= 123
    assert session.close_reason is not None and len(session.close_reason) > 123


# --- streams ------------------------------------------------------------------------------


def test_recorded_libsql_client_session() -> None:
    """protocol.md §4.4: open_stream, store_sql, execute by sql_id, close_stream."""
    session = _session("hrana2")
    opened = _single(session.receive(_open(0, 0)))
    assert opened == RequestEvent(0, opened.request)
    stored = _single(
        session.receive(_request(1, {"type": "store_sql", "sql_id": 0, "sql": "CREATE TABLE t(x)"}))
    )
    assert isinstance(stored, Send)
    assert json.loads(stored.text) == {
        "type": "response_ok",
        "request_id": 1,
        "response": {"type": "store_sql"},
    }
    executed = _single(session.receive(_execute(2, 0, sql_id=0, args=[], want_rows=True)))
    assert executed == RequestEvent(2, WsExecuteRequest(0, Stmt("CREATE TABLE t(x)", args=[])))
    closed = _single(session.receive(_request(3, {"type": "close_stream", "stream_id": 0})))
    assert isinstance(closed, RequestEvent)
    assert session.pending_count == 3
    answers = [
        session.response_ok(0, OpenStreamResponse()),
        session.response_ok(2, ExecuteResponse(StmtResult([], []))),
        session.response_ok(3, CloseStreamResponse()),
    ]
    assert [decode_ws_server_message(a).request_id for a in answers] == [0, 2, 3]  # type: ignore[union-attr]
    assert session.pending_count == 0 and session.stream_ids == frozenset()
    session.check_invariants()


def test_duplicate_stream_id_closes() -> None:
    session = _session()
    session.receive(_open(0, 5))
    _closed_with(session, _open(1, 5), CLOSE_POLICY_VIOLATION, "Stream 5 already exists")


@pytest.mark.parametrize(
    "frame",
    [
        _execute(0, 9, sql="SELECT 1"),
        _request(0, {"type": "close_stream", "stream_id": 9}),
        _request(0, {"type": "batch", "stream_id": 9, "batch": {"steps": []}}),
        _request(0, {"type": "sequence", "stream_id": 9, "sql": "x"}),
        _request(0, {"type": "describe", "stream_id": 9, "sql": "x"}),
    ],
)
def test_unknown_stream_id_closes(frame: str) -> None:
    _closed_with(_session(), frame, CLOSE_POLICY_VIOLATION, "Stream 9 not found")


def test_stream_ids_can_be_reused_after_close() -> None:
    session = _session()
    session.receive(_open(0, 1))
    session.receive(_request(1, {"type": "close_stream", "stream_id": 1}))
    assert isinstance(_single(session.receive(_open(2, 1))), RequestEvent)


def test_streams_per_connection_are_bounded() -> None:
    session = _session(streams_max=2)
    session.receive(_open(0, 1))
    session.receive(_open(1, 2))
    _closed_with(session, _open(2, 3), CLOSE_POLICY_VIOLATION, "Too many streams")


def test_requests_on_a_stream_that_failed_to_open_are_answered_by_the_session() -> None:
    session = _session("hrana3")
    session.receive(_open(0, 1))
    session.stream_open_failed(1)
    session.response_error(0, Error("no database", "NAMESPACE_NOT_FOUND"))
    reply = _single(session.receive(_execute(1, 1, sql="SELECT 1")))
    assert isinstance(reply, Send)
    message = decode_ws_server_message(reply.text)
    assert isinstance(message, ResponseErrorMsg) and message.error.code == "STREAM_NOT_OPEN"
    closed = _single(session.receive(_request(2, {"type": "close_stream", "stream_id": 1})))
    assert isinstance(closed, Send)
    assert isinstance(decode_ws_server_message(closed.text), ResponseOkMsg)
    assert session.pending_count == 0


def test_duplicate_request_id_in_flight_closes() -> None:
    session = _session()
    session.receive(_open(0, 1))
    _closed_with(session, _open(0, 2), CLOSE_POLICY_VIOLATION, "Request id 0 is already used")


def test_request_ids_are_reusable_after_the_response() -> None:
    session = _session()
    session.receive(_open(0, 1))
    session.response_ok(0, OpenStreamResponse())
    assert isinstance(_single(session.receive(_open(0, 2))), RequestEvent)


def test_response_must_match_the_request() -> None:
    session = _session()
    session.receive(_open(0, 1))
    with pytest.raises(AssertionError, match="close_stream answers open_stream"):
        session.response_ok(0, CloseStreamResponse())
    with pytest.raises(AssertionError, match="no request 7"):
        session.response_ok(7, OpenStreamResponse())


# --- version gating -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subprotocol", "body", "needed"),
    [
        ("hrana1", {"type": "sequence", "stream_id": 1, "sql": "x"}, 2),
        ("hrana1", {"type": "describe", "stream_id": 1, "sql": "x"}, 2),
        ("hrana1", {"type": "store_sql", "sql_id": 1, "sql": "x"}, 2),
        ("hrana1", {"type": "close_sql", "sql_id": 1}, 2),
        ("hrana2", {"type": "get_autocommit", "stream_id": 1}, 3),
        (
            "hrana2",
            {"type": "open_cursor", "stream_id": 1, "cursor_id": 1, "batch": {"steps": []}},
            3,
        ),
        ("hrana2", {"type": "fetch_cursor", "cursor_id": 1, "max_count": 10}, 3),
        ("hrana2", {"type": "close_cursor", "cursor_id": 1}, 3),
    ],
)
def test_newer_requests_are_rejected_on_older_versions(
    subprotocol: str, body: dict[str, Any], needed: int
) -> None:
    session = _session(subprotocol)
    session.receive(_open(0, 1))
    _closed_with(
        session,
        _request(1, body),
        CLOSE_POLICY_VIOLATION,
        f"only supported in protocol version hrana{needed}",
    )


def test_sql_id_is_rejected_in_hrana1() -> None:
    session = _session("hrana1")
    session.receive(_open(0, 1))
    _closed_with(session, _execute(1, 1, sql_id=0), CLOSE_POLICY_VIOLATION, "`sql_id`")


def test_is_autocommit_condition_needs_hrana3() -> None:
    batch = {"steps": [{"stmt": {"sql": "x"}, "condition": {"type": "is_autocommit"}}]}
    session = _session("hrana3")
    session.receive(_open(0, 1))
    assert isinstance(
        _single(session.receive(_request(1, {"type": "batch", "stream_id": 1, "batch": batch}))),
        RequestEvent,
    )
    session = _session("hrana2")
    session.receive(_open(0, 1))
    _closed_with(
        session,
        _request(1, {"type": "batch", "stream_id": 1, "batch": batch}),
        CLOSE_POLICY_VIOLATION,
        "`is_autocommit` condition",
    )


def test_bad_batch_step_reference_closes() -> None:
    batch = {"steps": [{"stmt": {"sql": "x"}, "condition": {"type": "ok", "step": 0}}]}
    session = _session()
    session.receive(_open(0, 1))
    _closed_with(
        session,
        _request(1, {"type": "batch", "stream_id": 1, "batch": batch}),
        CLOSE_POLICY_VIOLATION,
        "Invalid reference to step",
    )


# --- stored SQL ---------------------------------------------------------------------------


def test_stored_sql_resolution_in_batch_sequence_and_describe() -> None:
    session = _session("hrana3")
    session.receive(_open(0, 1))
    session.receive(_request(1, {"type": "store_sql", "sql_id": 4, "sql": "SELECT 4"}))
    batch = {"steps": [{"stmt": {"sql_id": 4}}, {"stmt": {"sql": "SELECT 5"}}]}
    event = _single(session.receive(_request(2, {"type": "batch", "stream_id": 1, "batch": batch})))
    assert [step.stmt.sql for step in event.request.batch.steps] == ["SELECT 4", "SELECT 5"]
    assert all(step.stmt.sql_id is None for step in event.request.batch.steps)
    event = _single(session.receive(_request(3, {"type": "describe", "stream_id": 1, "sql_id": 4})))
    assert event.request == WsDescribeRequest(1, "SELECT 4")
    event = _single(session.receive(_request(4, {"type": "sequence", "stream_id": 1, "sql_id": 4})))
    assert event.request.sql == "SELECT 4" and event.request.sql_id is None
    session.response_ok(4, SequenceResponse())
    # Closing the text after the request was received does not affect that request.
    session.receive(_request(5, {"type": "close_sql", "sql_id": 4}))
    _closed_with(
        session,
        _execute(6, 1, sql_id=4),
        CLOSE_POLICY_VIOLATION,
        "SQL text with id 4 was not found",
    )


def test_stored_sql_duplicate_id_closes_and_overflow_is_an_error_response() -> None:
    session = _session(stored_sql_max=1)
    session.receive(_request(0, {"type": "store_sql", "sql_id": 1, "sql": "a"}))
    reply = _single(session.receive(_request(1, {"type": "store_sql", "sql_id": 2, "sql": "b"})))
    message = decode_ws_server_message(reply.text)
    assert isinstance(message, ResponseErrorMsg)
    assert message.request_id == 1 and message.error.code == "SQL_STORE_TOO_MANY"
    _closed_with(
        session,
        _request(2, {"type": "store_sql", "sql_id": 1, "sql": "c"}),
        CLOSE_POLICY_VIOLATION,
        "already stored",
    )


# --- cursors ------------------------------------------------------------------------------


def _open_cursor(request_id: int, stream_id: int, cursor_id: int) -> str:
    return _request(
        request_id,
        {
            "type": "open_cursor",
            "stream_id": stream_id,
            "cursor_id": cursor_id,
            "batch": {"steps": []},
        },
    )


def test_cursor_lifecycle() -> None:
    session = _session("hrana3")
    session.receive(_open(0, 1))
    assert isinstance(_single(session.receive(_open_cursor(1, 1, 7))), RequestEvent)
    fetch = _request(2, {"type": "fetch_cursor", "cursor_id": 7, "max_count": 100})
    assert isinstance(_single(session.receive(fetch)), RequestEvent)
    close = _request(3, {"type": "close_cursor", "cursor_id": 7})
    assert isinstance(_single(session.receive(close)), RequestEvent)
    assert isinstance(_single(session.receive(_open_cursor(4, 1, 8))), RequestEvent)
    session.check_invariants()


def test_one_cursor_per_stream_and_unique_cursor_ids() -> None:
    session = _session("hrana3")
    session.receive(_open(0, 1))
    session.receive(_open(1, 2))
    session.receive(_open_cursor(2, 1, 7))
    _closed_with(
        session, _open_cursor(3, 1, 8), CLOSE_POLICY_VIOLATION, "already has an open cursor"
    )
    session = _session("hrana3")
    session.receive(_open(0, 1))
    session.receive(_open(1, 2))
    session.receive(_open_cursor(2, 1, 7))
    _closed_with(session, _open_cursor(3, 2, 7), CLOSE_POLICY_VIOLATION, "Cursor 7 already exists")


def test_closing_a_stream_closes_its_cursor() -> None:
    session = _session("hrana3")
    session.receive(_open(0, 1))
    session.receive(_open_cursor(1, 1, 7))
    session.receive(_request(2, {"type": "close_stream", "stream_id": 1}))
    session.check_invariants()
    _closed_with(
        session,
        _request(3, {"type": "fetch_cursor", "cursor_id": 7, "max_count": 1}),
        CLOSE_POLICY_VIOLATION,
        "Cursor 7 not found",
    )


def test_cursor_that_failed_to_open() -> None:
    session = _session("hrana3")
    session.receive(_open(0, 1))
    session.receive(_open_cursor(1, 1, 7))
    session.cursor_open_failed(7)
    session.response_error(1, Error("boom", "SQLITE_UNKNOWN"))
    reply = _single(
        session.receive(_request(2, {"type": "fetch_cursor", "cursor_id": 7, "max_count": 1}))
    )
    assert decode_ws_server_message(reply.text).error.code == "CURSOR_NOT_OPEN"  # type: ignore[union-attr]
    reply = _single(session.receive(_request(3, {"type": "close_cursor", "cursor_id": 7})))
    assert isinstance(decode_ws_server_message(reply.text), ResponseOkMsg)


def test_get_autocommit_on_hrana3() -> None:
    session = _session("hrana3")
    session.receive(_open(0, 1))
    event = _single(session.receive(_request(1, {"type": "get_autocommit", "stream_id": 1})))
    assert isinstance(event, RequestEvent)
    text = session.response_ok(1, GetAutocommitResponse(True))
    assert json.loads(text)["response"] == {"type": "get_autocommit", "is_autocommit": True}


# --- fuzzing the state machine ------------------------------------------------------------

ids = st.integers(0, 3)
requests = st.one_of(
    st.builds(lambda s: {"type": "open_stream", "stream_id": s}, ids),
    st.builds(lambda s: {"type": "close_stream", "stream_id": s}, ids),
    st.builds(lambda s: {"type": "execute", "stream_id": s, "stmt": {"sql": "x"}}, ids),
    st.builds(lambda s, q: {"type": "execute", "stream_id": s, "stmt": {"sql_id": q}}, ids, ids),
    st.builds(lambda q: {"type": "store_sql", "sql_id": q, "sql": "x"}, ids),
    st.builds(lambda q: {"type": "close_sql", "sql_id": q}, ids),
    st.builds(
        lambda s, c: {
            "type": "open_cursor",
            "stream_id": s,
            "cursor_id": c,
            "batch": {"steps": []},
        },
        ids,
        ids,
    ),
    st.builds(lambda c: {"type": "fetch_cursor", "cursor_id": c, "max_count": 5}, ids),
    st.builds(lambda c: {"type": "close_cursor", "cursor_id": c}, ids),
    st.builds(lambda s: {"type": "get_autocommit", "stream_id": s}, ids),
)
frames = st.one_of(
    st.just(HELLO),
    st.builds(lambda rid, request: _request(rid, request), st.integers(0, 50), requests),
    st.text(max_size=10),
)


@given(
    st.sampled_from(["hrana1", "hrana2", "hrana3"]), st.lists(frames, max_size=30), st.booleans()
)
def test_any_frame_sequence_yields_events_and_keeps_invariants(
    subprotocol: str, script: list[str], answer_immediately: bool
) -> None:
    session = WsSession(subprotocol, streams_max=3, stored_sql_max=2)
    for frame in script:
        for event in session.receive(frame):
            if isinstance(event, Hello):
                session.hello_ok()
            elif isinstance(event, RequestEvent) and answer_immediately:
                session.response_error(event.request_id, Error("not executed", "TEST"))
            elif isinstance(event, Close):
                assert event.code in (CLOSE_POLICY_VIOLATION, CLOSE_INVALID_PAYLOAD)
                assert event.reason
        session.check_invariants()
        if session.state is SessionState.CLOSED:
            break
