from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgelite.auth import generate_private_key, mint_token, private_key_pem, public_key_pem
from tests.support.processes import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("server"), namespaces=True, admin=True)
    yield process
    process.stop()


class Keys:
    def __init__(self, directory: Path) -> None:
        self.private_key = generate_private_key()
        self.public_path = directory / "jwt_public.pem"
        self.public_path.write_bytes(public_key_pem(self.private_key))
        (directory / "jwt_private.pem").write_bytes(private_key_pem(self.private_key))

    def token(self, *, read_only: bool = False, namespace: str | None = None,
              expires_in_s: float | None = None, now_s: float | None = None) -> str:
        import time

        return mint_token(self.private_key, read_only=read_only, expires_in_s=expires_in_s,
                          namespace=namespace, now_s=time.time() if now_s is None else now_s)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("auth-server"), auth_key_file=keys.public_path,
                           namespaces=True, admin=True)
    yield process
    process.stop()
