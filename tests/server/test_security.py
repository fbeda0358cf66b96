"""reliability.md §4 over the wire: who may run which SQL, through every endpoint."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.server.conftest import Keys
from tests.support.processes import ServerProcess

WRITES = [
    "INSERT INTO sec(v) VALUES ('x')",
    "UPDATE sec SET v = 'y'",
    "DELETE FROM sec",
    "REPLACE INTO sec(id, v) VALUES (1, 'z')",
    "INSERT INTO sec(id, v) VALUES (1, 'a') ON CONFLICT(id) DO UPDATE SET v = 'b'",
    "CREATE TABLE sec2(a)",
    "DROP TABLE sec",
    "ALTER TABLE sec ADD COLUMN w",
    "CREATE INDEX sec_v ON sec(v)",
    "CREATE TRIGGER sec_t AFTER INSERT ON sec BEGIN SELECT 1; END",
    "WITH x AS (SELECT 1) INSERT INTO sec(v) SELECT * FROM x",
    "INSERT INTO sec(v) VALUES ('r') RETURNING id",
]
NEVER = [
    "ATTACH 'sec-attached.db' AS a",
    "VACUUM INTO 'sec-copy.db'",
    "VACUUM",
    "PRAGMA query_only=0",
    "PRAGMA writable_schema=1",
    "PRAGMA journal_mode=DELETE",
    "PRAGMA synchronous=OFF",
    "SELECT load_extension('x')",
    "SELECT writefile('sec-written', 'x')",
    "CREATE TEMP TABLE tmp(a)",
    "INSERT INTO _edgelite_state VALUES ('applied_index', 0)",
    "DROP TABLE _edgelite_state",
]


def _pipeline(server: ServerProcess, sql: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"requests": [{"type": "execute", "stmt": {"sql": sql}}, {"type": "close"}]}
    return httpx.post(server.url + "/v2/pipeline", json=body, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def seeded(auth_server: ServerProcess, keys: Keys) -> ServerProcess:
    token = keys.token()
    for sql in ("CREATE TABLE IF NOT EXISTS sec(id INTEGER PRIMARY KEY, v TEXT)",
                "INSERT INTO sec(v) VALUES ('seed')"):
        assert _pipeline(auth_server, sql, token).status_code == 200
    return auth_server


@pytest.mark.parametrize("sql", WRITES)
def test_read_only_token_cannot_write(seeded: ServerProcess, keys: Keys, sql: str) -> None:
    response = _pipeline(seeded, sql, keys.token(read_only=True))
    assert response.status_code == 403, response.text
    assert "Write permission" in response.json()["error"]
    count = _pipeline(seeded, "SELECT count(*) FROM sec", keys.token(read_only=True))
    assert count.status_code == 200


@pytest.mark.parametrize("sql", NEVER)
@pytest.mark.parametrize("read_only", [True, False])
def test_nobody_can_escape_the_sandbox(seeded: ServerProcess, keys: Keys, sql: str,
                                       read_only: bool) -> None:
    response = _pipeline(seeded, sql, keys.token(read_only=read_only))
    if response.status_code == 200:
        result = response.json()["results"][0]
        assert result["type"] == "error", (sql, result)
        absent = "no such function" in result["error"]["message"]  # not even compiled in
        assert result["error"]["code"] == "SQLITE_AUTH" or absent, result
    else:
        assert response.status_code == 403, response.text
    for name in ("sec-attached.db", "sec-copy.db", "sec-written"):
        assert not (seeded.data_dir / name).exists()
        assert not (seeded.data_dir.parent / name).exists()


def test_read_only_token_reads(seeded: ServerProcess, keys: Keys) -> None:
    response = _pipeline(seeded, "SELECT v FROM sec WHERE id = 1", keys.token(read_only=True))
    assert response.status_code == 200
    result = response.json()["results"][0]["response"]["result"]
    assert result["rows"] == [[{"type": "text", "value": "seed"}]]


@pytest.mark.parametrize(("header", "code"), [
    (None, "AUTH_HEADER_NOT_FOUND"),
    ("Bearer", "AUTH_HEADER_MALFORMED"),
    ("Token abc", "AUTH_HTTP_HEADER_UNSUPPORTED_SCHEME"),
    ("Bearer not-a-jwt", "AUTH_JWT_INVALID"),
])
def test_bad_credentials_are_401(seeded: ServerProcess, header: str | None, code: str) -> None:
    headers = {"Authorization": header} if header is not None else {}
    body: dict[str, Any] = {"requests": [{"type": "execute", "stmt": {"sql": "SELECT 1"}}]}
    for path in ("/v2/pipeline", "/v3/pipeline", "/v1/execute", "/"):
        payload = {"stmt": {"sql": "SELECT 1"}} if path == "/v1/execute" else body
        if path == "/":
            payload = {"statements": ["SELECT 1"]}
        response = httpx.post(seeded.url + path, json=payload, headers=headers, timeout=10)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["code"] == code
        assert response.json()["error"].startswith("Unauthorized")


def test_expired_token_is_401(seeded: ServerProcess, keys: Keys) -> None:
    token = keys.token(expires_in_s=1, now_s=1_000_000)
    response = _pipeline(seeded, "SELECT 1", token)
    assert response.status_code == 401 and response.json()["code"] == "AUTH_JWT_EXPIRED"


def test_token_for_another_namespace_sees_nothing(seeded: ServerProcess, keys: Keys) -> None:
    response = _pipeline(seeded, "SELECT 1", keys.token(namespace="elsewhere"))
    assert response.status_code == 404
    assert "doesn't exist" in response.json()["error"]


def test_baton_cannot_be_used_with_another_token(seeded: ServerProcess, keys: Keys) -> None:
    """A stream opened by one caller is re-checked for each request's credentials."""
    body = {"requests": [{"type": "execute", "stmt": {"sql": "BEGIN"}}]}
    opened = httpx.post(seeded.url + "/v2/pipeline", json=body, timeout=10,
                        headers={"Authorization": f"Bearer {keys.token()}"})
    baton = opened.json()["baton"]
    stolen = {"baton": baton, "requests": [{"type": "execute", "stmt": {"sql": "SELECT 1"}}]}
    response = httpx.post(seeded.url + "/v2/pipeline", json=stolen, timeout=10,
                          headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_websocket_read_only_token(seeded: ServerProcess, keys: Keys) -> None:
    with ws_connect(seeded.ws_url, subprotocols=["hrana2"]) as socket:  # type: ignore[list-item]
        socket.send(json.dumps({"type": "hello", "jwt": keys.token(read_only=True)}))
        socket.send(json.dumps({"type": "request", "request_id": 1,
                                "request": {"type": "open_stream", "stream_id": 1}}))
        socket.send(json.dumps({"type": "request", "request_id": 2, "request": {
            "type": "execute", "stream_id": 1,
            "stmt": {"sql": "DELETE FROM sec", "want_rows": False}}}))
        replies = [json.loads(socket.recv(timeout=10)) for _ in range(3)]
    assert replies[0]["type"] == "hello_ok"
    final = next(r for r in replies if r.get("request_id") == 2)
    assert final["type"] == "response_error"
    assert "Write permission" in final["error"]["message"]


def test_websocket_bad_token_gets_hello_error(seeded: ServerProcess) -> None:
    with ws_connect(seeded.ws_url, subprotocols=["hrana2"]) as socket:  # type: ignore[list-item]
        socket.send(json.dumps({"type": "hello", "jwt": "garbage"}))
        reply = json.loads(socket.recv(timeout=10))
    assert reply["type"] == "hello_error"
    assert reply["error"]["code"] == "AUTH_JWT_INVALID"
