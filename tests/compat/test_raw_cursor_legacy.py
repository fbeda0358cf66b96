"""Group F of protocol.md §11, scenarios 29-30: the ``/v3/cursor`` NDJSON stream and
the legacy ``POST /`` API, raw with httpx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.compat.conftest import ServerPool
from tests.compat.harness import PLAIN, CompatServer
from tests.compat.wire import (
    CLOSE,
    IS_AUTOCOMMIT,
    Json,
    cursor_lines,
    error,
    execute,
    integer,
    not_,
    ok,
    pipeline_ok,
    response_of,
    step,
    text,
)

pytestmark = pytest.mark.timeout(120)
GET_AUTOCOMMIT: Json = {"type": "get_autocommit"}


@pytest.fixture(scope="module")
def server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(PLAIN)


@pytest.fixture
def http(server: CompatServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


# -- 29. cursor ------------------------------------------------------------------------

def test_s29_cursor_ndjson(http: httpx.Client, unique: Callable[[str], str]) -> None:
    table = unique("f29_cursor")
    pipeline_ok(http, [execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)"),
                       execute(f"INSERT INTO {table} (name) VALUES ('a'), ('b')"), CLOSE])
    response = http.post("/v3/cursor", json={"baton": None, "batch": {"steps": [
        step(f"SELECT id, name FROM {table} ORDER BY id"),
        step(f"SELECT * FROM {table}_nosuch"),
        step("SELECT 'skipped'", ok(1)),
        step(f"INSERT INTO {table} (name) VALUES ('c')", error(1)),
        step("SELECT 'probe'", IS_AUTOCOMMIT, want_rows=False),
    ]}})
    lines = cursor_lines(response)
    head, entries = lines[0], lines[1:]
    assert set(head) >= {"baton", "base_url"} and isinstance(head["baton"], str), head
    # sqld ends every cursor with {"type":"replication_index",...}, which is not in the
    # spec and which the JS hrana-client decoder rejects (protocol.md §1.8).
    kinds = [entry["type"] for entry in entries]
    assert kinds == ["step_begin", "row", "row", "step_end", "step_error",
                     "step_begin", "step_end", "step_begin", "step_end"], entries
    assert entries[0] == {"type": "step_begin", "step": 0,
                          "cols": [{"name": "id", "decltype": "INTEGER"},
                                   {"name": "name", "decltype": "TEXT"}]}
    assert [entry["row"] for entry in entries[1:3]] == [[integer(1), text("a")],
                                                        [integer(2), text("b")]]
    assert (entries[3]["affected_row_count"], entries[3]["last_insert_rowid"]) == (0, None)
    assert entries[4]["step"] == 1
    assert entries[4]["error"]["code"] in ("SQL_INPUT_ERROR", "SQLITE_UNKNOWN")
    assert isinstance(entries[4]["error"]["message"], str)
    assert (entries[5]["step"], entries[5]["cols"]) == (3, [])
    assert (entries[6]["affected_row_count"], entries[6]["last_insert_rowid"]) == (1, "3")
    assert entries[7]["step"] == 4
    closed = pipeline_ok(http, [CLOSE], head["baton"])
    assert closed["baton"] is None


def test_s29_cursor_keeps_the_stream(http: httpx.Client) -> None:
    opened = cursor_lines(http.post("/v3/cursor", json={"batch": {"steps": [step("BEGIN")]}}))
    baton = opened[0]["baton"]
    probe = cursor_lines(http.post("/v3/cursor", json={"baton": baton, "batch": {"steps": [
        step("SELECT 1", IS_AUTOCOMMIT), step("SELECT 2", not_(IS_AUTOCOMMIT))]}}))
    assert [entry.get("step") for entry in probe[1:] if entry["type"] == "step_begin"] == [1]
    reused = http.post("/v3/cursor", json={"baton": baton, "batch": {"steps": [step("SELECT 1")]}})
    assert reused.status_code == 400, reused.text
    closed = pipeline_ok(http, [GET_AUTOCOMMIT, CLOSE], probe[0]["baton"])
    assert response_of(closed["results"][0])["is_autocommit"] is False


# -- 30. legacy POST / -----------------------------------------------------------------

def test_s30_legacy_statements(http: httpx.Client, unique: Callable[[str], str]) -> None:
    table = unique("f30_legacy")
    response = http.post("/", json={"statements": [
        f"CREATE TABLE {table} (x, y)",
        {"q": f"INSERT INTO {table} VALUES (?, ?)", "params": [42, "a"]},
        {"q": f"INSERT INTO {table} VALUES (:x, :y)", "params": {":x": 1.5, "y": None}},
        {"q": f"INSERT INTO {table} VALUES (?, ?)", "params": [{"base64": "AQI"}, True]},
        f"SELECT x, y FROM {table} ORDER BY rowid",
    ]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body) == 5
    assert all(set(entry) == {"results"} for entry in body), body
    final = body[4]["results"]
    assert final["columns"] == ["x", "y"]
    assert final["rows"] == [[42, "a"], [1.5, None], [{"base64": "AQI"}, 1]]


def test_s30_legacy_step_error_is_inside_a_200(http: httpx.Client,
                                               unique: Callable[[str], str]) -> None:
    table = unique("f30_error")
    response = http.post("/", json={"statements": [
        f"CREATE TABLE {table} (x)", f"CREATE TABLE {table} (x)",
        f"INSERT INTO {table} VALUES (1)"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "results" in body[0]
    assert set(body[1]) == {"error"} and "already exists" in body[1]["error"], body[1]
    assert body[2] is None
    check = http.post("/", json={"statements": [f"SELECT count(*) FROM {table}"]})
    assert check.json()[0]["results"]["rows"] == [[0]]


def test_s30_legacy_rejects_two_statements_in_one_string(http: httpx.Client) -> None:
    response = http.post("/", json={"statements": ["SELECT 1; SELECT 2"]})
    assert response.status_code == 400, response.text
    assert "error" in json.loads(response.text)
