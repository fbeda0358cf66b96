"""Sync endpoints authenticate like Hrana: read-only tokens read, only writers push."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgelite.auth import generate_private_key, mint_token, public_key_pem
from tests.support.processes import ServerProcess, start_server
from tests.sync.conftest import SyncClient

READS = [("/v1/sync/info", {}), ("/v1/sync/snapshot", {}), ("/v1/sync/pull", {"since": 0}),
         ("/v1/changes", {"since": 0, "wait_ms": 0})]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, object]]:
    directory: Path = tmp_path_factory.mktemp("sync-auth")
    key = generate_private_key()
    (directory / "public.pem").write_bytes(public_key_pem(key))
    process = start_server(directory, auth_key_file=directory / "public.pem",
                           namespaces=True, admin=True)
    yield process, key
    process.stop()


def token(key: object, *, read_only: bool = False, namespace: str | None = None) -> str:
    return mint_token(key, read_only=read_only, expires_in_s=None,  # type: ignore[arg-type]
                      namespace=namespace, now_s=time.time())


def test_no_token_is_401(secured: tuple[ServerProcess, object]) -> None:
    server, _ = secured
    for path, params in READS:
        response = httpx.get(server.url + path, params=params)
        assert response.status_code == 401, path
        assert response.json()["code"].startswith("AUTH")


def test_read_only_tokens_read_but_cannot_push(secured: tuple[ServerProcess, object],
                                               tmp_path: Path) -> None:
    server, key = secured
    writer = SyncClient(server.url, server.admin_url, "default", token(key))
    reader = SyncClient(server.url, None, "default", token(key, read_only=True))
    writer.sql("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)")
    for path, params in READS:
        assert reader.get(path, **params).status_code == 200, path
    replica = reader.replica(tmp_path / "replica.db")
    body = replica.change("INSERT INTO t VALUES (1, 'offline')")
    refused = reader.push(body, "ro-1")
    assert refused.status_code == 403
    assert "needs write access" in refused.json()["message"]
    accepted = writer.push(body, "rw-1")
    assert accepted.status_code == 200, accepted.text
    assert writer.rows("SELECT v FROM t WHERE id = 1") == [["offline"]]
    writer.http.close()
    reader.http.close()


def test_a_token_for_another_namespace_sees_nothing(secured: tuple[ServerProcess, object]) \
        -> None:
    server, key = secured
    elsewhere = SyncClient(server.url, None, "default", token(key, namespace="other"))
    for path, params in READS:
        response = elsewhere.get(path, **params)
        assert response.status_code == 404, path
    elsewhere.http.close()
