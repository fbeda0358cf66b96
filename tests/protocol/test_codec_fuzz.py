"""Every decoder, fed anything, returns a message or raises ProtocolError with a message.

Three kinds of input: arbitrary bytes, arbitrary JSON, and valid documents with one
subtree replaced by arbitrary JSON (which reaches the validation deep inside). Plus the
pathological cases named in the brief: deep nesting, huge numbers, huge arrays, bad UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgelite.errors import ProtocolError
from edgelite.protocol.hrana import json_codec as codec
from edgelite.protocol.hrana.json_codec import MALFORMED_JSON_CODE, DecodeLimits
from tests.protocol import test_spec_examples as examples


def _pipeline_v2(data: bytes) -> object:
    return codec.decode_pipeline_request(data, version=2)


DECODERS: dict[str, Callable[[bytes], object]] = {
    "pipeline_request_v2": _pipeline_v2,
    "pipeline_request_v3": codec.decode_pipeline_request,
    "pipeline_response": codec.decode_pipeline_response,
    "cursor_request": codec.decode_cursor_request,
    "cursor_head": codec.decode_cursor_head,
    "cursor_entry": codec.decode_cursor_entry,
    "ws_client": codec.decode_ws_client_message,
    "ws_server": codec.decode_ws_server_message,
    "v1_execute_request": codec.decode_v1_execute_request,
    "v1_batch_request": codec.decode_v1_batch_request,
    "v1_execute_response": codec.decode_v1_execute_response,
    "v1_batch_response": codec.decode_v1_batch_response,
    "error_body": codec.decode_error_body,
    "legacy_request": codec.decode_legacy_request,
}

VALID_DOCUMENTS: list[tuple[str, Any]] = [
    ("pipeline_request_v3", examples.PIPELINE_BATCH_WRITE),
    ("pipeline_request_v3", examples.V3_PIPELINE),
    ("pipeline_request_v3", {"requests": [{"type": "execute", "stmt": examples.STMT}]}),
    ("pipeline_request_v2", examples.PIPELINE_EXECUTE),
    ("pipeline_response", examples.PIPELINE_BATCH_WRITE_RESPONSE),
    ("pipeline_response", examples.PIPELINE_EXECUTE_RESPONSE),
    ("cursor_request", examples.CURSOR_REQUEST),
    *[("cursor_entry", entry) for entry in examples.CURSOR_ENTRIES],
    *[("ws_client", message) for message in examples.WS_CLIENT_MESSAGES],
    *[("ws_server", message) for message in examples.WS_SERVER_MESSAGES],
    ("v1_batch_response", {"result": examples.BATCH_RESULT}),
    ("legacy_request", {"statements": ["x", {"q": "y", "params": {"a": 1}}]}),
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(["execute", "batch", "ok", "not", "integer", "", "-1", "1e999"])
)
json_documents = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "stmt", "sql", "sql_id", "args", "steps", "cond", "value"])
            | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def _assert_only_protocol_errors(decode: Callable[[bytes], object], data: bytes) -> None:
    try:
        decode(data)
    except ProtocolError as exc:
        assert str(exc).strip(), "ProtocolError without a message"
        assert exc.message == str(exc)


@pytest.mark.parametrize("name", sorted(DECODERS))
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    _assert_only_protocol_errors(DECODERS[name], data)


@pytest.mark.parametrize("name", sorted(DECODERS))
@given(document=json_documents)
def test_arbitrary_json(name: str, document: object) -> None:
    _assert_only_protocol_errors(DECODERS[name], json.dumps(document).encode())


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _replaced(document: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    if not path:
        return replacement
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = replacement
    return copy


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=400)
@given(data=st.data())
def test_valid_documents_with_one_subtree_replaced(data: st.DataObject) -> None:
    name, document = data.draw(st.sampled_from(VALID_DOCUMENTS))
    path = data.draw(st.sampled_from(_paths(document)))
    mutated = _replaced(document, path, data.draw(json_documents))
    _assert_only_protocol_errors(DECODERS[name], json.dumps(mutated).encode())


@settings(max_examples=200)
@given(data=st.data())
def test_valid_documents_with_one_key_dropped(data: st.DataObject) -> None:
    name, document = data.draw(st.sampled_from(VALID_DOCUMENTS))
    parents = [
        p for p in _paths(document) if isinstance(_at(document, p), dict) and _at(document, p)
    ]
    path = data.draw(st.sampled_from(parents))
    copy = json.loads(json.dumps(document))
    node = _at(copy, path)
    del node[data.draw(st.sampled_from(sorted(node)))]
    _assert_only_protocol_errors(DECODERS[name], json.dumps(copy).encode())


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def test_valid_documents_decode() -> None:
    for name, document in VALID_DOCUMENTS:
        DECODERS[name](json.dumps(document).encode())


# --- pathological inputs ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DECODERS))
@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
def test_deeply_nested_arrays_and_objects(name: str, depth: int) -> None:
    for data in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        _assert_only_protocol_errors(DECODERS[name], data)


@pytest.mark.parametrize("depth", [33, 500, 100_000])
def test_deeply_nested_conditions_are_rejected(depth: int) -> None:
    cond = b'{"type":"not","cond":' * depth + b'{"type":"ok","step":0}' + b"}" * depth
    body = (
        b'{"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"a"}},'
        b'{"stmt":{"sql":"b"},"condition":' + cond + b"}]}}]}"
    )
    with pytest.raises(ProtocolError, match="nested"):
        codec.decode_pipeline_request(body)


def test_condition_depth_limit_is_configurable() -> None:
    cond = {"type": "ok", "step": 0}
    for _ in range(4):
        cond = {"type": "not", "cond": cond}
    body = json.dumps(
        {
            "requests": [
                {
                    "type": "batch",
                    "batch": {
                        "steps": [{"stmt": {"sql": "a"}}, {"stmt": {"sql": "b"}, "condition": cond}]
                    },
                }
            ]
        }
    ).encode()
    codec.decode_pipeline_request(body, limits=DecodeLimits(condition_depth_max=5))
    with pytest.raises(ProtocolError, match="deeper than 4 levels"):
        codec.decode_pipeline_request(body, limits=DecodeLimits(condition_depth_max=4))


@pytest.mark.parametrize(
    "number", [b"1" * 5000, b"-" + b"9" * 400, b"1e400", b"-1e400", b"1e-400", b"123.456e789"]
)
@pytest.mark.parametrize(
    "template",
    [
        b'{"requests":[{"type":"store_sql","sql_id":%s,"sql":"x"}]}',
        b'{"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"a"}},'
        b'{"stmt":{"sql":"a"},"condition":{"type":"ok","step":%s}}]}}]}',
        b'{"requests":[{"type":"execute","stmt":{"sql":"a","args":[{"type":"float","value":%s}]}}]}',
        b'{"requests":[{"type":"execute","stmt":{"sql":"a","replication_index":%s}}]}',
    ],
)
def test_huge_numbers(template: bytes, number: bytes) -> None:
    _assert_only_protocol_errors(codec.decode_pipeline_request, template % number)


def test_request_count_is_bounded() -> None:
    body = json.dumps({"requests": [{"type": "close"}] * 11}).encode()
    limits = DecodeLimits(statements_max=10)
    with pytest.raises(ProtocolError, match=r"11 requests, more than the limit of 10"):
        codec.decode_pipeline_request(body, limits=limits)
    steps = [{"stmt": {"sql": "x"}}] * 11
    with pytest.raises(ProtocolError, match=r"11 steps, more than the limit of 10"):
        codec.decode_cursor_request(json.dumps({"batch": {"steps": steps}}).encode(), limits=limits)
    with pytest.raises(ProtocolError, match=r"11 statements, more than the limit of 10"):
        codec.decode_legacy_request(json.dumps({"statements": ["x"] * 11}).encode(), limits=limits)


def test_huge_array_of_requests_is_rejected_not_crashing() -> None:
    body = b'{"requests":[' + b",".join([b'{"type":"close"}'] * 200_000) + b"]}"
    with pytest.raises(ProtocolError, match="more than the limit"):
        codec.decode_pipeline_request(body)


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe{}", b'{"requests":[],"baton":"\xed\xa0\x80"}', b'{"requests":[],"baton":"\xc3"}'],
)
def test_invalid_utf8_is_a_malformed_json_error(data: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        codec.decode_pipeline_request(data)
    assert caught.value.code == MALFORMED_JSON_CODE


def test_str_input_with_lone_surrogate_is_a_malformed_json_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        codec.decode_ws_client_message('{"type":"hello","jwt":"\ud800"}')
    assert caught.value.code == MALFORMED_JSON_CODE


def test_schema_errors_are_not_flagged_as_malformed_json() -> None:
    with pytest.raises(ProtocolError) as caught:
        codec.decode_ws_client_message('{"type":"nope"}')
    assert caught.value.code != MALFORMED_JSON_CODE
    assert "Invalid value 'nope' - at `$.type`" in str(caught.value)


def test_unknown_fields_are_ignored_everywhere() -> None:
    body = (
        b'{"future":1,"requests":[{"type":"execute","x":[1],"stmt":{"sql":"a","new":{},'
        b'"args":[{"type":"integer","value":"1","extra":true}]}}]}'
    )
    (request,) = codec.decode_pipeline_request(body).requests
    assert request.stmt.args == [1]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"requests":[{"type":"execute","stmt":{}}]}', "neither `sql` nor `sql_id`"),
        (b'{"requests":[{"type":"sequence","sql":"a","sql_id":1}]}', "both given"),
        (b'{"requests":[{"type":"describe"}]}', "neither `sql` nor `sql_id`"),
        (b'{"requests":[{"type":"nope"}]}', "Invalid value 'nope'"),
        (b'{"requests":[{"stmt":{"sql":"a"}}]}', "missing required field `type`"),
        (b'{"requests":[{"type":"store_sql","sql_id":2147483648,"sql":"x"}]}', "<= 2147483647"),
        (b'{"requests":[{"type":"execute","stmt":{"sql":"a","replication_index":-1}}]}', "range"),
        (b'{"requests":{}}', "Expected `array`, got `object`"),
        (b'{"baton":1,"requests":[]}', "Expected `str | null`, got `int` - at `$.baton`"),
        (b"[]", "Expected `object`, got `array`"),
    ],
)
def test_error_messages_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(
        ProtocolError,
        match=message.replace("|", r"\|")
        .replace("$", r"\$")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        codec.decode_pipeline_request(body)


def test_version_rules_of_pipelines() -> None:
    is_autocommit = (
        b'{"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"a"},'
        b'"condition":{"type":"is_autocommit"}}]}}]}'
    )
    codec.decode_pipeline_request(is_autocommit, version=3)
    with pytest.raises(ProtocolError, match="`is_autocommit` condition is only supported"):
        codec.decode_pipeline_request(is_autocommit, version=2)
    get_autocommit = b'{"requests":[{"type":"get_autocommit"}]}'
    codec.decode_pipeline_request(get_autocommit, version=3)
    with pytest.raises(ProtocolError, match="`get_autocommit` request is only supported"):
        codec.decode_pipeline_request(get_autocommit, version=2)
    with pytest.raises(ProtocolError, match="`sql_id` is only supported in hrana2"):
        codec.decode_v1_execute_request(b'{"stmt":{"sql_id":1}}')
