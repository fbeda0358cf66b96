"""Every JSON example of protocol.md decodes, and re-encodes to the documented shape.

Requests (client -> server) are decoded with the server's decoders and encoded back with
the client's encoders; responses are decoded with the client's decoders and encoded back
with the server's. ``assert_shape`` allows the encoder to add keys that only carry
defaults (``"sql_id": null``). Placeholders of the document (``[…]``, ``{…}``) are filled
with concrete values.
"""

from __future__ import annotations

import json

import pytest

from edgelite.protocol.hrana import json_codec as codec
from edgelite.protocol.hrana.legacy import (
    LegacyError,
    LegacyQuery,
    LegacyResult,
    LegacyResultSet,
)
from edgelite.protocol.hrana.messages import (
    BatchRequest,
    CloseRequest,
    CloseResponse,
    Col,
    CondNot,
    CondOk,
    CursorHead,
    ExecuteRequest,
    ExecuteResponse,
    PipelineResponse,
    StepBeginEntry,
    StepEndEntry,
    StmtResult,
    StoreSqlRequest,
    StreamResultError,
    StreamResultOk,
)
from edgelite.protocol.hrana.ws_messages import (
    CloseStreamRequest,
    HelloMsg,
    OpenStreamRequest,
    RequestMsg,
    WsExecuteRequest,
)
from tests.protocol._shapes import as_json, assert_shape

STMT = {
    "sql": "SELECT * FROM t WHERE id = ? AND name = :n",
    "sql_id": None,
    "args": [{"type": "integer", "value": "1"}],
    "named_args": [{"name": "n", "value": {"type": "text", "value": "bob"}}],
    "want_rows": True,
    "replication_index": None,
}

STMT_RESULT = {
    "cols": [{"name": "x", "decltype": "INT"}],
    "rows": [[{"type": "integer", "value": "42"}]],
    "affected_row_count": 0,
    "last_insert_rowid": None,
    "replication_index": "2",
    "rows_read": 1,
    "rows_written": 0,
    "query_duration_ms": 0.081,
}

BATCH = {
    "steps": [
        {"stmt": {"sql": "BEGIN IMMEDIATE", "want_rows": False}},
        {
            "condition": {"type": "ok", "step": 0},
            "stmt": {"sql_id": 0, "args": [{"type": "text", "value": "bob"}]},
        },
        {"condition": {"type": "ok", "step": 1}, "stmt": {"sql": "COMMIT", "want_rows": False}},
        {
            "condition": {"type": "not", "cond": {"type": "ok", "step": 2}},
            "stmt": {"sql": "ROLLBACK", "want_rows": False},
        },
    ],
    "replication_index": None,
}

BATCH_RESULT = {
    "step_results": [STMT_RESULT, None, None],
    "step_errors": [
        None,
        {"message": "SQLite error: UNIQUE constraint failed: t.id", "code": "SQLITE_CONSTRAINT"},
        None,
    ],
    "replication_index": "7",
}

DESCRIBE_RESULT = {
    "params": [{"name": None}, {"name": ":n"}],
    "cols": [{"name": "id", "decltype": "INTEGER"}, {"name": "w", "decltype": None}],
    "is_explain": False,
    "is_readonly": True,
}

CURSOR_ENTRIES = [
    {"type": "step_begin", "step": 0, "cols": [{"name": "id", "decltype": "INTEGER"}]},
    {"type": "row", "row": [{"type": "integer", "value": "1"}]},
    {"type": "step_end", "affected_row_count": 0, "last_insert_rowid": None},
    {
        "type": "step_error",
        "step": 1,
        "error": {"message": "no such table", "code": "SQL_INPUT_ERROR"},
    },
    {"type": "error", "error": {"message": "boom", "code": "SQLITE_UNKNOWN"}},
]

PIPELINE_EXECUTE = {
    "requests": [
        {
            "type": "execute",
            "stmt": {
                "sql": "SELECT * FROM t WHERE name = :name",
                "args": [],
                "named_args": [{"name": "name", "value": {"type": "text", "value": "alice"}}],
                "want_rows": True,
            },
        },
        {"type": "close"},
    ]
}

PIPELINE_EXECUTE_RESPONSE = {
    "baton": None,
    "base_url": None,
    "results": [
        {
            "type": "ok",
            "response": {
                "type": "execute",
                "result": {
                    "cols": [
                        {"name": "id", "decltype": "INTEGER"},
                        {"name": "name", "decltype": "TEXT"},
                    ],
                    "rows": [
                        [{"type": "integer", "value": "1"}, {"type": "text", "value": "alice"}]
                    ],
                    "affected_row_count": 0,
                    "last_insert_rowid": None,
                    "replication_index": None,
                },
            },
        },
        {"type": "ok", "response": {"type": "close"}},
    ],
}

PIPELINE_SQL_ERROR_RESPONSE = {
    "baton": None,
    "base_url": None,
    "results": [
        {
            "type": "error",
            "error": {
                "message": "SQL input error: no such table: nosuch (at offset 14)",
                "code": "SQL_INPUT_ERROR",
            },
        },
        {"type": "ok", "response": {"type": "close"}},
    ],
}


def _step(sql: str | None = None, sql_id: int | None = None, **extra: object) -> dict[str, object]:
    stmt: dict[str, object] = {"args": [], "named_args": [], "want_rows": True}
    if sql is not None:
        stmt["sql"] = sql
    if sql_id is not None:
        stmt["sql_id"] = sql_id
    stmt.update(extra)
    return stmt


PIPELINE_BATCH_WRITE = {
    "requests": [
        {"type": "store_sql", "sql_id": 0, "sql": "INSERT INTO t (name) VALUES (?)"},
        {"type": "store_sql", "sql_id": 1, "sql": "SELECT count(*) AS n FROM t"},
        {
            "type": "batch",
            "batch": {
                "steps": [
                    {"stmt": _step("BEGIN IMMEDIATE", want_rows=False)},
                    {
                        "condition": {"type": "ok", "step": 0},
                        "stmt": _step(sql_id=0, args=[{"type": "text", "value": "bob"}]),
                    },
                    {"condition": {"type": "ok", "step": 1}, "stmt": _step(sql_id=1)},
                    {
                        "condition": {"type": "ok", "step": 2},
                        "stmt": _step("COMMIT", want_rows=False),
                    },
                    {
                        "condition": {"type": "not", "cond": {"type": "ok", "step": 3}},
                        "stmt": _step("ROLLBACK", want_rows=False),
                    },
                ]
            },
        },
        {"type": "close"},
    ]
}

EMPTY_RESULT = {
    "cols": [],
    "rows": [],
    "affected_row_count": 0,
    "last_insert_rowid": None,
    "replication_index": None,
}

PIPELINE_BATCH_WRITE_RESPONSE = {
    "baton": None,
    "base_url": None,
    "results": [
        {"type": "ok", "response": {"type": "store_sql"}},
        {"type": "ok", "response": {"type": "store_sql"}},
        {
            "type": "ok",
            "response": {
                "type": "batch",
                "result": {
                    "step_results": [
                        EMPTY_RESULT,
                        {**EMPTY_RESULT, "affected_row_count": 1, "last_insert_rowid": "1"},
                        EMPTY_RESULT,
                        EMPTY_RESULT,
                        None,
                    ],
                    "step_errors": [None, None, None, None, None],
                },
            },
        },
        {"type": "ok", "response": {"type": "close"}},
    ],
}

TRANSACTION_STEPS = [
    {
        "requests": [
            {"type": "store_sql", "sql_id": 0, "sql": "INSERT INTO t (name) VALUES ('carol')"},
            {
                "type": "batch",
                "batch": {
                    "steps": [
                        {"stmt": _step("BEGIN IMMEDIATE", want_rows=False)},
                        {"condition": {"type": "ok", "step": 0}, "stmt": _step(sql_id=0)},
                    ]
                },
            },
        ]
    },
    {
        "baton": "l1VJYd",
        "requests": [
            {"type": "store_sql", "sql_id": 1, "sql": "SELECT count(*) AS n FROM t"},
            {"type": "batch", "batch": {"steps": [{"stmt": _step(sql_id=1)}]}},
        ],
    },
    {
        "baton": "OR+ABR",
        "requests": [
            {"type": "execute", "stmt": _step("COMMIT", want_rows=False)},
            {"type": "close"},
        ],
    },
    {"baton": "OR+ABR", "requests": [{"type": "close"}]},
]

V3_PIPELINE = {
    "baton": None,
    "requests": [
        {"type": "describe", "sql": "SELECT 1;", "sql_id": None, "replication_index": None},
        {"type": "get_autocommit"},
        {"type": "sequence", "sql": "CREATE TABLE a(x); INSERT INTO a VALUES (1);"},
        {"type": "close_sql", "sql_id": 0},
    ],
}

CURSOR_REQUEST = {
    "baton": None,
    "batch": {
        "steps": [
            {"stmt": {"sql": "SELECT id, name FROM t", "want_rows": True}},
            {
                "stmt": {"sql": "SELECT 1", "want_rows": False},
                "condition": {"type": "is_autocommit"},
            },
        ]
    },
}

CURSOR_RESPONSE_LINES = [
    {"baton": "abc", "base_url": None},
    {
        "type": "step_begin",
        "step": 0,
        "cols": [{"name": "id", "decltype": None}, {"name": "name", "decltype": None}],
    },
    {"type": "row", "row": [{"type": "integer", "value": "1"}, {"type": "text", "value": "alice"}]},
    {"type": "step_end", "affected_row_count": 0, "last_insert_rowid": None},
    {"type": "step_begin", "step": 1, "cols": [{"name": "1", "decltype": None}]},
    {"type": "step_end", "affected_row_count": 0, "last_insert_rowid": None},
]

WS_CLIENT_MESSAGES = [
    {"type": "hello", "jwt": "eyJ.x.y"},
    {"type": "hello", "jwt": None},
    {"type": "hello"},
    {"type": "request", "request_id": 0, "request": {"type": "open_stream", "stream_id": 0}},
    {
        "type": "request",
        "request_id": 1,
        "request": {"type": "store_sql", "sql_id": 0, "sql": "CREATE TABLE t(x)"},
    },
    {
        "type": "request",
        "request_id": 2,
        "request": {"type": "execute", "stream_id": 0, "stmt": _step(sql_id=0)},
    },
    {"type": "request", "request_id": 3, "request": {"type": "close_stream", "stream_id": 0}},
    {
        "type": "request",
        "request_id": 4,
        "request": {"type": "batch", "stream_id": 0, "batch": BATCH},
    },
    {
        "type": "request",
        "request_id": 5,
        "request": {"type": "sequence", "stream_id": 0, "sql": "x"},
    },
    {
        "type": "request",
        "request_id": 6,
        "request": {"type": "describe", "stream_id": 0, "sql_id": 3},
    },
    {"type": "request", "request_id": 7, "request": {"type": "close_sql", "sql_id": 5}},
    {"type": "request", "request_id": 8, "request": {"type": "get_autocommit", "stream_id": 0}},
    {
        "type": "request",
        "request_id": 9,
        "request": {"type": "open_cursor", "stream_id": 0, "cursor_id": 0, "batch": BATCH},
    },
    {
        "type": "request",
        "request_id": 10,
        "request": {"type": "fetch_cursor", "cursor_id": 0, "max_count": 1000},
    },
    {"type": "request", "request_id": 11, "request": {"type": "close_cursor", "cursor_id": 0}},
]

WS_SERVER_MESSAGES = [
    {"type": "hello_ok"},
    {
        "type": "hello_error",
        "error": {
            "message": "Authentication failed: The JWT is invalid",
            "code": "AUTH_JWT_INVALID",
        },
    },
    {"type": "response_error", "request_id": 0, "error": {"message": "m", "code": "c"}},
    {"type": "response_ok", "request_id": 0, "response": {"type": "open_stream"}},
    {"type": "response_ok", "request_id": 1, "response": {"type": "close_stream"}},
    {
        "type": "response_ok",
        "request_id": 2,
        "response": {"type": "execute", "result": STMT_RESULT},
    },
    {"type": "response_ok", "request_id": 3, "response": {"type": "batch", "result": BATCH_RESULT}},
    {"type": "response_ok", "request_id": 4, "response": {"type": "sequence"}},
    {
        "type": "response_ok",
        "request_id": 5,
        "response": {"type": "describe", "result": DESCRIBE_RESULT},
    },
    {"type": "response_ok", "request_id": 6, "response": {"type": "store_sql"}},
    {"type": "response_ok", "request_id": 7, "response": {"type": "close_sql"}},
    {
        "type": "response_ok",
        "request_id": 8,
        "response": {"type": "get_autocommit", "is_autocommit": True},
    },
    {"type": "response_ok", "request_id": 9, "response": {"type": "open_cursor"}},
    {
        "type": "response_ok",
        "request_id": 10,
        "response": {"type": "fetch_cursor", "entries": CURSOR_ENTRIES, "done": False},
    },
    {"type": "response_ok", "request_id": 11, "response": {"type": "close_cursor"}},
]


def _bytes(document: object) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "document",
    [
        PIPELINE_EXECUTE,
        PIPELINE_BATCH_WRITE,
        *TRANSACTION_STEPS,
        V3_PIPELINE,
        {"requests": [{"type": "execute", "stmt": STMT}]},
        {"requests": [{"type": "batch", "batch": BATCH}]},
    ],
)
def test_pipeline_requests_round_trip(document: dict[str, object]) -> None:
    request = codec.decode_pipeline_request(_bytes(document), version=3)
    assert_shape(as_json(codec.encode_pipeline_request(request)), document)


def test_pipeline_example_decodes_to_the_expected_messages() -> None:
    request = codec.decode_pipeline_request(_bytes(PIPELINE_EXECUTE), version=2)
    assert request.baton is None
    execute, close = request.requests
    assert isinstance(execute, ExecuteRequest) and isinstance(close, CloseRequest)
    assert execute.stmt.named_args[0].name == "name"
    assert execute.stmt.named_args[0].value == "alice"
    batch = codec.decode_pipeline_request(_bytes(PIPELINE_BATCH_WRITE), version=2).requests
    assert isinstance(batch[0], StoreSqlRequest) and batch[0].sql_id == 0
    assert isinstance(batch[2], BatchRequest)
    assert batch[2].batch.steps[4].condition == CondNot(CondOk(3))
    assert batch[2].batch.steps[1].stmt.args == ["bob"]


@pytest.mark.parametrize(
    "document",
    [PIPELINE_EXECUTE_RESPONSE, PIPELINE_SQL_ERROR_RESPONSE, PIPELINE_BATCH_WRITE_RESPONSE],
)
def test_pipeline_responses_round_trip(document: dict[str, object]) -> None:
    response = codec.decode_pipeline_response(_bytes(document))
    assert_shape(as_json(codec.encode_pipeline_response(response)), document)


def test_server_built_execute_response_matches_the_example() -> None:
    result = StmtResult(
        cols=[Col("id", "INTEGER"), Col("name", "TEXT")],
        rows=[(1, "alice")],
    )
    response = PipelineResponse(
        baton=None,
        base_url=None,
        results=[StreamResultOk(ExecuteResponse(result)), StreamResultOk(CloseResponse())],
    )
    assert_shape(as_json(codec.encode_pipeline_response(response)), PIPELINE_EXECUTE_RESPONSE)
    error = PipelineResponse(
        results=[
            StreamResultError(
                codec.decode_error_body(
                    _bytes(
                        PIPELINE_SQL_ERROR_RESPONSE["results"][0]["error"]  # type: ignore[index]
                    )
                )
            ),
            StreamResultOk(CloseResponse()),
        ]
    )
    assert_shape(as_json(codec.encode_pipeline_response(error)), PIPELINE_SQL_ERROR_RESPONSE)


def test_cursor_request_and_response_lines_round_trip() -> None:
    request = codec.decode_cursor_request(_bytes(CURSOR_REQUEST))
    assert_shape(as_json(codec.encode_cursor_request(request)), CURSOR_REQUEST)
    head, *entries = CURSOR_RESPONSE_LINES
    line = codec.encode_cursor_head(codec.decode_cursor_head(_bytes(head)))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert_shape(as_json(line), head)
    for entry in [*entries, *CURSOR_ENTRIES]:
        line = codec.encode_cursor_entry(codec.decode_cursor_entry(_bytes(entry)))
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert_shape(as_json(line), entry)


def test_server_built_cursor_lines_match_the_example() -> None:
    lines = [
        codec.encode_cursor_head(CursorHead(baton="abc")),
        codec.encode_cursor_entry(StepBeginEntry(0, [Col("id"), Col("name")])),
        codec.encode_cursor_entry(codec.decode_cursor_entry(_bytes(CURSOR_RESPONSE_LINES[2]))),
        codec.encode_cursor_entry(StepEndEntry()),
        codec.encode_cursor_entry(StepBeginEntry(1, [Col("1")])),
        codec.encode_cursor_entry(StepEndEntry(affected_row_count=0, last_insert_rowid=None)),
    ]
    assert [as_json(line) for line in lines] == CURSOR_RESPONSE_LINES


def test_sqld_replication_index_cursor_entry_is_tolerated() -> None:
    entry = codec.decode_cursor_entry(b'{"type":"replication_index","replication_index":123}')
    assert entry.replication_index == 123  # type: ignore[union-attr]


@pytest.mark.parametrize("document", WS_CLIENT_MESSAGES)
def test_ws_client_messages_round_trip(document: dict[str, object]) -> None:
    message = codec.decode_ws_client_message(json.dumps(document))
    assert_shape(as_json(codec.encode_ws_client_message(message)), document)


@pytest.mark.parametrize("document", WS_SERVER_MESSAGES)
def test_ws_server_messages_round_trip(document: dict[str, object]) -> None:
    message = codec.decode_ws_server_message(json.dumps(document))
    assert_shape(as_json(codec.encode_ws_server_message(message)), document)


def test_recorded_ws_session_decodes_to_the_expected_requests() -> None:
    decoded = [codec.decode_ws_client_message(json.dumps(doc)) for doc in WS_CLIENT_MESSAGES]
    assert decoded[0] == HelloMsg("eyJ.x.y")
    assert decoded[1] == decoded[2] == HelloMsg(None)
    assert decoded[3] == RequestMsg(0, OpenStreamRequest(0))
    assert decoded[6] == RequestMsg(3, CloseStreamRequest(0))
    execute = decoded[5]
    assert isinstance(execute, RequestMsg) and isinstance(execute.request, WsExecuteRequest)
    assert execute.request.stmt.sql_id == 0 and execute.request.stmt.sql is None


def test_v1_bodies_round_trip() -> None:
    execute = {
        "stmt": {
            "sql": "SELECT name FROM t WHERE id = ?",
            "args": [{"type": "integer", "value": "1"}],
            "named_args": [],
            "want_rows": True,
        }
    }
    request = codec.decode_v1_execute_request(_bytes(execute))
    assert request.stmt.args == [1]
    assert_shape(as_json(codec.encode_v1_execute_request(request)), execute)
    steps = json.loads(json.dumps(BATCH["steps"]))
    steps[1]["stmt"] = {"sql": "INSERT INTO t VALUES (?)", "args": [{"type": "null"}]}
    batch = {"batch": {"steps": steps}}
    decoded = codec.decode_v1_batch_request(_bytes(batch))
    assert_shape(as_json(codec.encode_v1_batch_request(decoded)), batch)
    for body, decode, encode in [
        (
            {"result": STMT_RESULT},
            codec.decode_v1_execute_response,
            codec.encode_v1_execute_response,
        ),
        ({"result": BATCH_RESULT}, codec.decode_v1_batch_response, codec.encode_v1_batch_response),
    ]:
        assert_shape(as_json(encode(decode(_bytes(body)))), body)  # type: ignore[operator]


def test_error_body_round_trips() -> None:
    body = {"message": "The stream has expired due to inactivity", "code": "STREAM_EXPIRED"}
    assert as_json(codec.encode_error_body(codec.decode_error_body(_bytes(body)))) == body


def test_legacy_request_and_response_match_the_example() -> None:
    body = {
        "statements": [
            "CREATE TABLE foo (x INT)",
            {"q": "INSERT INTO foo VALUES (?)", "params": [42]},
            {"q": "SELECT * FROM foo WHERE x = :x", "params": {":x": 42}},
        ],
        "replication_index": None,
    }
    request = codec.decode_legacy_request(_bytes(body))
    assert request.statements == [
        "CREATE TABLE foo (x INT)",
        LegacyQuery("INSERT INTO foo VALUES (?)", [42]),
        LegacyQuery("SELECT * FROM foo WHERE x = :x", {":x": 42}),
    ]
    response = [
        LegacyResult(LegacyResultSet([], [], rows_read=1, rows_written=2, query_duration_ms=0.1)),
        LegacyResult(LegacyResultSet([], [], rows_read=0, rows_written=1, query_duration_ms=0.05)),
        LegacyResult(LegacyResultSet(["x"], [[42]], rows_read=1, query_duration_ms=0.03)),
    ]
    assert as_json(codec.encode_legacy_response(response)) == [
        {
            "results": {
                "columns": [],
                "rows": [],
                "rows_read": 1,
                "rows_written": 2,
                "query_duration_ms": 0.1,
            }
        },
        {
            "results": {
                "columns": [],
                "rows": [],
                "rows_read": 0,
                "rows_written": 1,
                "query_duration_ms": 0.05,
            }
        },
        {
            "results": {
                "columns": ["x"],
                "rows": [[42]],
                "rows_read": 1,
                "rows_written": 0,
                "query_duration_ms": 0.03,
            }
        },
    ]
    failed = [LegacyError("table t already exists in create table t(x int); at offset 13"), None]
    assert as_json(codec.encode_legacy_response(failed)) == [
        {"error": "table t already exists in create table t(x int); at offset 13"},
        None,
    ]
    assert as_json(codec.encode_legacy_error("interactive transaction not allowed")) == {
        "error": "interactive transaction not allowed"
    }


def test_legacy_values_are_plain_json() -> None:
    body = b'{"statements":[{"q":"x","params":[null,1,2.5,"s",true,false,{"base64":"AQID"}]}]}'
    (query,) = codec.decode_legacy_request(body).statements
    assert isinstance(query, LegacyQuery)
    assert query.params == [None, 1, 2.5, "s", 1, 0, b"\x01\x02\x03"]
    rows = LegacyResultSet(["a"], [[None, 1, 2.5, "s", b"\x01\x02\x03"]])
    assert as_json(codec.encode_legacy_response([LegacyResult(rows)]))[0]["results"]["rows"] == [
        [None, 1, 2.5, "s", {"base64": "AQID"}]
    ]
