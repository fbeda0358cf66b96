"""Fixtures for the compatibility suite: servers per mode, keys, tokens, node.

Servers are session-scoped and started lazily, one per ``ServerMode``; tests share
them and isolate themselves with distinct table (or namespace) names instead of
paying a server start each. ``EDGELITE_COMPAT_TARGET=sqld:/path/to/sqld`` swaps the
server for the reference implementation (see docs/design/compat.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.compat.harness import (
    JWT,
    NAMESPACES,
    NAMESPACES_JWT,
    PLAIN,
    SHORT_EXPIRY,
    AuthKeys,
    CompatServer,
    ServerMode,
    Target,
    node_available,
    start_compat_server,
)


class ServerPool:
    """Starts at most one server per mode for the whole session and stops them all."""

    def __init__(self, target: Target, keys: AuthKeys, base_dir: Path) -> None:
        self.target = target
        self.keys = keys
        self.base_dir = base_dir
        self.servers: dict[str, CompatServer] = {}

    def get(self, mode: ServerMode) -> CompatServer:
        server = self.servers.get(mode.name)
        if server is not None and server.process.poll() is not None:
            raise RuntimeError(f"{mode.name} server died:\n{server.log()[-4000:]}")
        if server is None:
            keys = self.keys if mode.auth else None
            server = start_compat_server(self.target, mode, self.base_dir / mode.name, keys)
            self.servers[mode.name] = server
        return server

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def target() -> Target:
    return Target.from_env()


@pytest.fixture(scope="session")
def auth_keys() -> AuthKeys:
    return AuthKeys.generate()


_active_pools: list[ServerPool] = []
# Other server logs (e.g. cluster members) to show when a test fails: name -> path.
extra_server_logs: dict[str, Path] = {}


@pytest.fixture(scope="session")
def server_pool(target: Target, auth_keys: AuthKeys,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(target, auth_keys, tmp_path_factory.mktemp("compat"))
    _active_pools.append(pool)
    yield pool
    _active_pools.remove(pool)
    pool.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """On a failure, attach the tail of every server log that reports an error, so a
    server-side traceback shows up next to the client-side assertion."""
    report: pytest.TestReport = yield
    if report.failed:
        logs = {name: server.log_path for pool in _active_pools
                for name, server in pool.servers.items()}
        for name, path in {**logs, **extra_server_logs}.items():
            log = path.read_text(errors="replace") if path.exists() else ""
            if "Traceback" in log or " ERROR " in log:
                report.sections.append((f"{name} server log (tail)",
                                        "\n".join(log.splitlines()[-60:])))
    return report


@pytest.fixture(scope="session")
def plain_server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(PLAIN)


@pytest.fixture(scope="session")
def jwt_server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(JWT)


@pytest.fixture(scope="session")
def ns_server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(NAMESPACES)


@pytest.fixture(scope="session")
def ns_jwt_server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(NAMESPACES_JWT)


@pytest.fixture(scope="session")
def expiry_server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(SHORT_EXPIRY)


_names = itertools.count(1)


@pytest.fixture(scope="session")
def unique() -> Callable[[str], str]:
    """``unique("t")`` -> ``t_17``: table and namespace names no other test uses."""
    return lambda stem: f"{stem}_{next(_names)}"


@pytest.fixture(scope="session")
def node() -> None:
    reason = node_available()
    if reason is not None:
        pytest.skip(reason)
