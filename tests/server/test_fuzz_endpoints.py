"""Bad input gets a clear 4xx and harms nothing: Hypothesis against a real server.

Every POST endpoint receives arbitrary bytes, arbitrary JSON, structurally plausible
but wrong documents, deep nesting and huge numbers. The answer must be a 4xx whose body
names the problem (or a 200 whose results carry per-statement errors), never a 5xx,
and the server must keep serving correct requests afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.processes import ServerProcess

ENDPOINTS = ["/v2/pipeline", "/v3/pipeline", "/v3/cursor", "/v1/execute", "/v1/batch", "/"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)

value_objects = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["null", "integer", "float", "text",
                                                    "blob", "bogus"])},
                          optional={"value": json_values, "base64": json_values}),
    json_values,
)

stmts = st.fixed_dictionaries(
    {}, optional={"sql": st.one_of(st.sampled_from(["SELECT 1", "SELECT ?", "SELECT :a",
                                                    "", "SELEC", "SELECT 1; SELECT 2"]),
                                   json_values),
                  "sql_id": json_values, "args": st.lists(value_objects, max_size=3),
                  "named_args": st.lists(st.fixed_dictionaries(
                      {"name": st.text(max_size=5), "value": value_objects}), max_size=3),
                  "want_rows": json_values})

requests = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["execute", "batch", "sequence", "describe",
                                                    "store_sql", "close_sql", "close",
                                                    "get_autocommit", "nope"])},
                          optional={"stmt": stmts, "sql": json_values,
                                    "sql_id": json_values,
                                    "batch": st.fixed_dictionaries({"steps": st.lists(
                                        st.fixed_dictionaries({"stmt": stmts},
                                                              optional={"condition": json_values}),
                                        max_size=3)})}),
    json_values,
)

documents = st.one_of(
    st.fixed_dictionaries({"requests": st.lists(requests, max_size=4)},
                          optional={"baton": json_values}),
    st.fixed_dictionaries({"stmt": stmts}),
    st.fixed_dictionaries({"statements": st.lists(json_values, max_size=3)}),
    json_values,
)


def _check(response: httpx.Response) -> None:
    if response.request.url.path == "/v1/execute" and response.status_code in (500, 501, 503):
        # Hrana-over-HTTP v1 reports *statement* errors as 5xx with a Hrana error body
        # (protocol.md §5.2); that is an answer, not a server failure.
        assert response.json()["code"], response.text
        return
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.text.strip(), "an error response must say what was wrong"


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def _still_serving(client: httpx.Client) -> None:
    body = {"requests": [{"type": "execute", "stmt": {"sql": "SELECT 41 + 1"}},
                         {"type": "close"}]}
    response = client.post("/v2/pipeline", json=body)
    assert response.status_code == 200
    row = response.json()["results"][0]["response"]["result"]["rows"][0]
    assert row == [{"type": "integer", "value": "42"}]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(ENDPOINTS), body=st.binary(max_size=200))
def test_arbitrary_bytes(client: httpx.Client, endpoint: str, body: bytes) -> None:
    _check(client.post(endpoint, content=body))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(ENDPOINTS), document=documents)
def test_plausible_but_wrong_documents(client: httpx.Client, endpoint: str,
                                       document: Any) -> None:
    _check(client.post(endpoint, content=json.dumps(document)))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_deep_nesting_and_huge_numbers(client: httpx.Client, endpoint: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    _check(client.post(endpoint, content=deep))
    condition = '{"type":"not","cond":' * 5000 + '{"type":"ok","step":0}' + "}" * 5000
    nested = ('{"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"SELECT 1"}},'
              '{"stmt":{"sql":"SELECT 2"},"condition":' + condition + "}]}}]}")
    _check(client.post(endpoint, content=nested))
    huge = ('{"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":'
            '"integer","value":"' + "9" * 5000 + '"}]}}]}')
    _check(client.post(endpoint, content=huge))
    _still_serving(client)


def test_oversized_body_is_refused_by_size(client: httpx.Client) -> None:
    padding = b"x" * (9 << 20)
    body = b'{"requests":[{"type":"execute","stmt":{"sql":"SELECT \'' + padding + b"'\"}}]}"
    response = client.post("/v2/pipeline", content=body)
    assert response.status_code == 413
    _still_serving(client)


def test_named_problems(client: httpx.Client) -> None:
    response = client.post("/v2/pipeline", content=b'{"requests":[{"type":"execute"}]}')
    assert response.status_code == 400 and "stmt" in response.text
    response = client.post("/v2/pipeline", json={"requests": [{"type": "execute", "stmt": {
        "sql": "SELECT ?", "args": [{"type": "integer", "value": 42}]}}]})
    assert response.status_code == 400 and "args" in response.text
    response = client.post("/v2/pipeline", json={"baton": "forged", "requests": []})
    assert response.status_code == 400 and "baton" in response.text.lower()
    _still_serving(client)
