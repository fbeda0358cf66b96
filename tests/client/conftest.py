"""Fixtures for the client suite: one real server process for the session, and a
``connect`` factory parametrized over the three modes (remote HTTP, remote WebSocket,
local file).

Remote modes share the server's database, so tests name their tables with the
``table`` fixture (unique per test) instead of assuming an empty database. Local mode
gets a fresh file per test.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import edgelite
from edgelite.auth import generate_private_key, mint_token, public_key_pem
from tests.support.processes import ServerProcess, start_server

MODES = ("http", "ws", "local")
_names = itertools.count()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("client-server"))
    yield process
    process.stop()


@dataclasses.dataclass(frozen=True)
class AuthServer:
    process: ServerProcess
    token: str
    read_only_token: str


def start_auth_server(directory: Path, name: str = "auth") -> AuthServer:
    """A server that requires Ed25519 JWTs, and tokens for it."""
    key = generate_private_key()
    key_file = directory / f"{name}-key.pem"
    key_file.write_bytes(public_key_pem(key))
    process = start_server(directory, auth_key_file=key_file, name=name)
    now = time.time()
    return AuthServer(
        process,
        mint_token(key, read_only=False, expires_in_s=None, namespace=None, now_s=now),
        mint_token(key, read_only=True, expires_in_s=None, namespace=None, now_s=now),
    )


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    server = start_auth_server(tmp_path_factory.mktemp("client-auth"))
    yield server
    server.process.stop()


def url_for(mode: str, server: ServerProcess, tmp_path: Path) -> str:
    if mode == "http":
        return server.url
    if mode == "ws":
        return server.ws_url
    assert mode == "local", mode
    return str(tmp_path / "local.db")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(mode: str, server: ServerProcess, tmp_path: Path) -> str:
    return url_for(mode, server, tmp_path)


@pytest.fixture
def connect(database_url: str) -> Iterator[Callable[..., edgelite.Connection]]:
    """Open connections to this test's database; all are closed at teardown."""
    opened: list[edgelite.Connection] = []

    def open_connection(**kwargs: Any) -> edgelite.Connection:
        connection = edgelite.connect(database_url, **kwargs)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()


@pytest.fixture
def conn(connect: Callable[..., edgelite.Connection]) -> edgelite.Connection:
    return connect()


@pytest.fixture
def table() -> str:
    """A table name no other test uses."""
    return f"t{next(_names)}"
