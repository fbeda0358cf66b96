"""Harness for the sync tests: one real ``edgelite dev`` server shared by the package
(each test works in a namespace of its own), and a small HTTP client for the sync
endpoints, plus a hand-made "replica" (a snapshot file changed under an SQLite
session) to produce pushes the way an offline embedded replica does."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import httpx
import msgspec
import pytest

from edgelite.storage import effects
from tests.support.processes import ServerProcess, start_server

_names = itertools.count(1)


@pytest.fixture(scope="package")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("sync-dev"), namespaces=True, admin=True)
    yield process
    process.stop()


class SyncClient:
    """Speaks the sync endpoints of one server for one namespace."""

    def __init__(self, url: str, admin_url: str | None, namespace: str,
                 token: str | None = None) -> None:
        self.url = url
        self.admin_url = admin_url
        self.namespace = namespace
        self.http = httpx.Client(timeout=30)
        self.headers = {"x-namespace": namespace}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"

    def sibling(self, namespace: str) -> SyncClient:
        """A client for another namespace on the same connection pool."""
        other = SyncClient.__new__(SyncClient)
        other.__dict__.update(self.__dict__)
        other.namespace = namespace
        other.headers = dict(self.headers, **{"x-namespace": namespace})
        return other

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(self.url + path, params=params, headers=self.headers)

    def info(self) -> dict[str, Any]:
        response = self.get("/v1/sync/info")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def pull(self, since: int, **params: Any) -> dict[str, Any]:
        response = self.get("/v1/sync/pull", since=since, **params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/vnd.msgpack"
        return msgspec.msgpack.decode(response.content)  # type: ignore[no-any-return]

    def push(self, body: dict[str, Any], request_id: str | None) -> httpx.Response:
        headers = dict(self.headers)
        if request_id is not None:
            headers["x-edgelite-request-id"] = request_id
        return self.http.post(self.url + "/v1/sync/push",
                              content=msgspec.msgpack.encode(body), headers=headers)

    def sql(self, statement: str, args: list[Any] | None = None) -> int:
        """Run one statement (strong consistency); its replication index."""
        stmt: dict[str, Any] = {"sql": statement}
        if args:
            stmt["args"] = [_value(a) for a in args]
        response = self.http.post(self.url + "/v2/pipeline", headers=self.headers, json={
            "requests": [{"type": "execute", "stmt": stmt}, {"type": "close"}]})
        assert response.status_code == 200, response.text
        result = response.json()["results"][0]
        assert result["type"] == "ok", result
        return int(response.headers["x-edgelite-replication-index"])

    def rows(self, statement: str) -> list[list[Any]]:
        response = self.http.post(self.url + "/v2/pipeline", headers=self.headers, json={
            "requests": [{"type": "execute", "stmt": {"sql": statement}}, {"type": "close"}]})
        result = response.json()["results"][0]
        assert result["type"] == "ok", result
        return [[_plain(v) for v in row] for row in result["response"]["result"]["rows"]]

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        assert self.admin_url is not None
        return self.http.request(method, self.admin_url + path, json=body)

    def set_policy(self, table: str, policy: str) -> None:
        response = self.admin("POST", f"/v1/namespaces/{self.namespace}/conflict-policy",
                              {"table": table, "policy": policy})
        assert response.status_code == 200, response.text

    def replica(self, path: Path) -> Replica:
        response = self.get("/v1/sync/snapshot")
        assert response.status_code == 200, response.text
        path.write_bytes(response.content)
        return Replica(path, response.headers["x-edgelite-database-id"],
                       int(response.headers["x-edgelite-snapshot-index"]))


class Replica:
    """A snapshot file plus offline changes recorded with a session (a minimal embedded
    replica): ``change`` returns a push body."""

    def __init__(self, path: Path, database_id: str, index: int) -> None:
        self.path = path
        self.database_id = database_id
        self.index = index
        self.connection = apsw.Connection(str(path))

    def change(self, *statements: str, hlc: list[list[Any]] | None = None) -> dict[str, Any]:
        session = apsw.Session(self.connection, "main")
        session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
        session.attach(None)
        for statement in statements:
            self.connection.execute(statement)
        changeset = session.changeset()
        session.close()
        return {"database_id": self.database_id, "base_index": self.index,
                "changes": [changeset], "hlc": hlc or []}

    def apply(self, entries: list[list[Any]]) -> None:
        """Apply pulled entries the way a replica must (triggers and FKs off)."""
        connection = self.connection
        connection.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 0)
        for index, _at_ms, effect, _ids in entries:
            connection.execute("BEGIN IMMEDIATE")
            effects.apply_effect(connection, effects.decode_effect(effect))
            connection.execute("COMMIT")
            self.index = index

    def rows(self, statement: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.connection.execute(statement)]


@pytest.fixture
def client(dev: ServerProcess) -> Iterator[SyncClient]:
    """A fresh namespace on the shared server, and a client for it."""
    namespace = f"sync{next(_names)}"
    made = SyncClient(dev.url, dev.admin_url, namespace)
    response = made.admin("POST", f"/v1/namespaces/{namespace}/create", {})
    assert response.status_code == 200, response.text
    yield made
    made.http.close()


def wait_until(predicate: Any, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s}s")
        time.sleep(0.05)


def _value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if isinstance(value, int):
        return {"type": "integer", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    return {"type": "text", "value": str(value)}


def _plain(value: dict[str, Any]) -> Any:
    if value["type"] == "null":
        return None
    if value["type"] == "integer":
        return int(value["value"])
    return value.get("value")
