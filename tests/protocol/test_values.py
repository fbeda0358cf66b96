"""Hrana values: the wire forms of protocol.md §1.1 and round trips through messages."""

from __future__ import annotations

import enum
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgelite.errors import ProtocolError
from edgelite.protocol.hrana import json_codec as codec
from edgelite.protocol.hrana.messages import (
    Col,
    ExecuteRequest,
    ExecuteResponse,
    NamedArg,
    PipelineRequest,
    PipelineResponse,
    Stmt,
    StmtResult,
    StreamResultOk,
)
from edgelite.protocol.hrana.values import (
    INT64_MAX,
    INT64_MIN,
    blob_from_base64,
    blob_to_base64,
    legacy_value_from_json,
    legacy_value_to_json,
    value_from_json,
    value_to_json,
)
from tests.protocol._shapes import same_value

sql_values = st.one_of(
    st.none(),
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 2**53 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-0.0, 0.0, 42.0, 1e308, -5e-324, 2.0**53]),
    st.text(),
    st.binary(),
)

lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


def _execute_body(*args: object) -> bytes:
    values = ",".join(json.dumps(arg) for arg in args)
    stmt = '{"sql":"x","args":[' + values + "]}"
    return ('{"requests":[{"type":"execute","stmt":' + stmt + "}]}").encode()


def _decode_args(*args: object) -> list[object]:
    (request,) = codec.decode_pipeline_request(_execute_body(*args)).requests
    assert isinstance(request, ExecuteRequest)
    return list(request.stmt.args)


# --- exact wire forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (None, {"type": "null"}),
        (42, {"type": "integer", "value": "42"}),
        (-(2**63), {"type": "integer", "value": "-9223372036854775808"}),
        (True, {"type": "integer", "value": "1"}),
        (False, {"type": "integer", "value": "0"}),
        (3.5, {"type": "float", "value": 3.5}),
        (42.0, {"type": "float", "value": 42.0}),
        ("hi", {"type": "text", "value": "hi"}),
        (b"\x01\x02\x03", {"type": "blob", "base64": "AQID"}),
        (b"\x01", {"type": "blob", "base64": "AQ"}),
        (b"\x01\x02", {"type": "blob", "base64": "AQI"}),
        (b"", {"type": "blob", "base64": ""}),
    ],
)
def test_wire_form(value: object, wire: dict[str, object]) -> None:
    assert value_to_json(value) == wire  # type: ignore[arg-type]


def test_subclasses_encode_as_their_base_type() -> None:
    class Color(enum.IntEnum):
        RED = 7

    class Name(str):
        pass

    assert value_to_json(Color.RED) == {"type": "integer", "value": "7"}
    assert value_to_json(Name("x")) == {"type": "text", "value": "x"}
    assert value_to_json(bytearray(b"\x01")) == {"type": "blob", "base64": "AQ"}
    assert value_to_json(memoryview(b"\x01")) == {"type": "blob", "base64": "AQ"}  # type: ignore[arg-type]


def test_integral_float_on_the_wire_stays_a_float() -> None:
    # @libsql/client serialises 42.0 as 42: it must still bind as REAL.
    (value,) = _decode_args({"type": "float", "value": 42})
    assert type(value) is float and value == 42.0


def test_numeric_strings_are_accepted_for_floats() -> None:
    assert _decode_args({"type": "float", "value": "3.14"}) == [3.14]
    assert _decode_args({"type": "float", "value": "-1e3"}) == [-1000.0]


def test_blobs_are_accepted_with_or_without_padding() -> None:
    assert _decode_args(
        {"type": "blob", "base64": "AQ=="},
        {"type": "blob", "base64": "AQ"},
        {"type": "blob", "base64": "AQI="},
        {"type": "blob", "base64": "AQI"},
    ) == [b"\x01", b"\x01", b"\x01\x02", b"\x01\x02"]


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ({"type": "integer", "value": 42}, "must be a decimal string, got number"),
        ({"type": "integer", "value": "True"}, "decimal integer string"),
        ({"type": "integer", "value": "1.5"}, "decimal integer string"),
        ({"type": "integer", "value": " 1"}, "decimal integer string"),
        ({"type": "integer", "value": "1_000"}, "decimal integer string"),
        ({"type": "integer", "value": "9223372036854775808"}, "out of the range"),
        ({"type": "integer", "value": "-9223372036854775809"}, "out of the range"),
        ({"type": "integer", "value": "9" * 400}, "decimal integer string"),
        ({"type": "integer"}, "must be a decimal string, got null"),
        ({"type": "float", "value": "nan"}, "must be a number"),
        ({"type": "float", "value": "inf"}, "must be a number"),
        ({"type": "float", "value": "1e999"}, "not finite"),
        ({"type": "float", "value": 10**400}, "out of range"),
        ({"type": "float", "value": True}, "must be a number, got boolean"),
        ({"type": "float", "value": None}, "must be a number, got null"),
        ({"type": "text", "value": 1}, "text value must be a string"),
        ({"type": "blob", "base64": "A"}, "impossible length"),
        ({"type": "blob", "base64": "AQ==="}, "too much padding"),
        ({"type": "blob", "base64": "A*=="}, "base64 is invalid"),
        ({"type": "blob", "base64": 5}, "must be a string"),
        ({"type": "blob"}, "must be a string"),
        ({"type": "bool", "value": True}, "unknown value type"),
        ({"value": "1"}, "has no `type`"),
        (42, "expected a Hrana value object, got number"),
        ("42", "expected a Hrana value object, got string"),
        (None, "expected a Hrana value object, got null"),
        ([1], "expected a Hrana value object, got array"),
    ],
)
def test_bad_values_are_protocol_errors_naming_the_path(wire: object, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        _decode_args({"type": "null"}, wire)
    assert message in str(caught.value)
    assert "$.requests[0].stmt.args[1]" in str(caught.value)


def test_bad_named_arg_value_names_its_path() -> None:
    body = (
        b'{"requests":[{"type":"execute","stmt":{"sql":"x",'
        b'"named_args":[{"name":"a","value":{"type":"integer","value":1}}]}}]}'
    )
    with pytest.raises(ProtocolError, match=r"\$\.requests\[0\]\.stmt\.named_args\[0\]\.value"):
        codec.decode_pipeline_request(body)


def test_value_from_json_raises_protocol_error_with_the_given_path() -> None:
    assert value_from_json({"type": "integer", "value": "7"}) == 7
    with pytest.raises(ProtocolError, match=r"at `\$\.rows\[0\]\[2\]`"):
        value_from_json({"type": "integer", "value": 7}, path="$.rows[0][2]")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**63, "does not fit in 64 bits"),
        (-(2**63) - 1, "does not fit in 64 bits"),
        (math.inf, "non-finite"),
        (-math.inf, "non-finite"),
        (math.nan, "non-finite"),
        ([1], "cannot send a value of type list"),
        (object(), "cannot send a value of type object"),
    ],
)
def test_unencodable_values_raise_protocol_error(value: object, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        value_to_json(value)  # type: ignore[arg-type]
    request = PipelineRequest(requests=[ExecuteRequest(Stmt("x", args=[value]))])  # type: ignore[list-item]
    with pytest.raises(ProtocolError, match=message):
        codec.encode_pipeline_request(request)


@given(st.text(min_size=0, max_size=5), lone_surrogates, st.text(max_size=5))
def test_text_with_lone_surrogates_cannot_be_sent(prefix: str, surrogate: str, suffix: str) -> None:
    text = prefix + surrogate + suffix
    result = StmtResult([Col("t")], [[text]])
    response = PipelineResponse(results=[StreamResultOk(ExecuteResponse(result))])
    with pytest.raises(ProtocolError, match="lone surrogate"):
        codec.encode_pipeline_response(response)


@given(lone_surrogates)
def test_escaped_lone_surrogates_are_rejected_on_input(surrogate: str) -> None:
    escaped = f"\\u{ord(surrogate):04x}"
    arg = '{"type":"text","value":"a' + escaped + 'b"}'
    body = '{"requests":[{"type":"execute","stmt":{"sql":"x","args":[' + arg + "]}}]}"
    with pytest.raises(ProtocolError):
        codec.decode_pipeline_request(body.encode())


def test_escaped_surrogate_pairs_are_accepted() -> None:
    assert _decode_args({"type": "text", "value": "\U0001f600"}) == ["\U0001f600"]
    arg = b'{"type":"text","value":"\\ud83d\\ude00"}'
    body = b'{"requests":[{"type":"execute","stmt":{"sql":"x","args":[' + arg + b"]}}]}"
    (request,) = codec.decode_pipeline_request(body).requests
    assert isinstance(request, ExecuteRequest) and request.stmt.args == ["\U0001f600"]


# --- round trips --------------------------------------------------------------------------


@given(sql_values)
def test_single_value_round_trip(value: object) -> None:
    wire = value_to_json(value)  # type: ignore[arg-type]
    assert same_value(value_from_json(json.loads(json.dumps(wire))), value)


@given(
    st.lists(sql_values, max_size=8), st.dictionaries(st.text(max_size=5), sql_values, max_size=4)
)
def test_values_round_trip_through_a_pipeline_request(
    args: list[object], named: dict[str, object]
) -> None:
    stmt = Stmt("SELECT 1", args=args, named_args=[NamedArg(k, v) for k, v in named.items()])  # type: ignore[arg-type]
    body = codec.encode_pipeline_request(PipelineRequest(requests=[ExecuteRequest(stmt)]))
    (decoded,) = codec.decode_pipeline_request(body).requests
    assert isinstance(decoded, ExecuteRequest)
    assert len(decoded.stmt.args) == len(args)
    assert all(same_value(got, want) for got, want in zip(decoded.stmt.args, args, strict=True))
    assert [arg.name for arg in decoded.stmt.named_args] == list(named)
    assert all(same_value(arg.value, named[arg.name]) for arg in decoded.stmt.named_args)


@given(
    st.lists(st.lists(sql_values, min_size=2, max_size=2), max_size=6),
    st.none() | st.integers(INT64_MIN, INT64_MAX),
)
def test_rows_round_trip_through_a_pipeline_response(
    rows: list[list[object]], rowid: int | None
) -> None:
    result = StmtResult([Col("a", "INT"), Col("b", None)], rows, 3, rowid)  # type: ignore[arg-type]
    body = codec.encode_pipeline_response(
        PipelineResponse(results=[StreamResultOk(ExecuteResponse(result))])
    )
    wire = json.loads(body)["results"][0]["response"]["result"]
    assert wire["last_insert_rowid"] == (None if rowid is None else str(rowid))
    (decoded,) = codec.decode_pipeline_response(body).results
    assert isinstance(decoded, StreamResultOk) and isinstance(decoded.response, ExecuteResponse)
    got = decoded.response.result
    assert got.last_insert_rowid == rowid and got.affected_row_count == 3
    assert len(got.rows) == len(rows)
    for got_row, want_row in zip(got.rows, rows, strict=True):
        assert all(same_value(a, b) for a, b in zip(got_row, want_row, strict=True))


@given(st.binary())
def test_blob_base64_is_unpadded_and_decodes_padded_too(data: bytes) -> None:
    text = blob_to_base64(data)
    assert "=" not in text
    assert blob_from_base64(text) == data
    assert blob_from_base64(text + "=" * (-len(text) % 4)) == data


# --- legacy plain-JSON values -------------------------------------------------------------


@given(sql_values)
def test_legacy_value_round_trip(value: object) -> None:
    wire = json.loads(json.dumps(legacy_value_to_json(value)))  # type: ignore[arg-type]
    assert same_value(legacy_value_from_json(wire), value)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (2**63, "out of the 64-bit range"),
        ({"b64": "AQ"}, "expected null, number, string"),
        ([1], "expected null, number, string"),
        ({"base64": "A"}, "impossible length"),
    ],
)
def test_bad_legacy_values(wire: object, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        legacy_value_from_json(wire, path="$.statements[0].params[0]")
    body = json.dumps({"statements": [{"q": "x", "params": [wire]}]}).encode()
    with pytest.raises(ProtocolError, match=r"\$\.statements\[0\]\.params\[0\]"):
        codec.decode_legacy_request(body)
