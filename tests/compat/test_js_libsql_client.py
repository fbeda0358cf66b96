"""Groups A and B of protocol.md §11: npm @libsql/client 0.18.0, unmodified.

Each (transport, mode) pair runs ``js/libsql_client.mjs`` once per module; the tests
below assert that run's observations scenario by scenario.

- transports: ``http://127.0.0.1:P`` and ``libsql://127.0.0.1:P?tls=0`` (group A,
  Hrana over HTTP ``/v2/pipeline``), ``ws://127.0.0.1:P`` (group B, ``hrana2``);
- modes: ``plain`` (no auth), ``jwt`` (Ed25519 JWT auth, valid read-write token),
  ``ns`` (namespaces on, the database chosen by ``Host: <ns>.localhost``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.compat.conftest import ServerPool
from tests.compat.expect import http_status_error, ok
from tests.compat.harness import JWT, NAMESPACES, PLAIN, SHORT_EXPIRY, CompatServer, run_node
from tests.compat.js_checks import CHECKS, RunContext, check_s13_auth, check_s17_ws_auth

pytestmark = [pytest.mark.usefixtures("node"), pytest.mark.timeout(300)]

MODES = {"plain": PLAIN, "jwt": JWT, "ns": NAMESPACES}
TRANSPORTS = ("http", "libsql", "ws")
HTTP_TRANSPORTS = ("http", "libsql")
COMMON = list(CHECKS)


def client_url(server: CompatServer, transport: str, namespace: str | None) -> str:
    host = server.host_for(namespace) if namespace else f"127.0.0.1:{server.port}"
    return {"http": f"http://{host}", "libsql": f"libsql://{host}?tls=0",
            "ws": f"ws://{host}"}[transport]


def base_config(server: CompatServer, transport: str, prefix: str,
                namespace: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": client_url(server, transport, namespace),
        "authToken": server.token(),
        "prefix": prefix,
        # More distinct SQL texts than the client's cache holds (30 per HTTP stream,
        # 100 per WebSocket), so eviction sends close_sql.
        "distinctSql": 120 if transport == "ws" else 40,
    }
    if server.keys is not None:
        config["tokens"] = server.keys.script_tokens()
    return config


class Runs:
    """One node run per (transport, mode), made on first use and cached."""

    def __init__(self, pool: ServerPool) -> None:
        self.pool = pool
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, transport: str, mode: str) -> dict[str, Any]:
        key = (transport, mode)
        if key not in self.cache:
            server = self.pool.get(MODES[mode])
            namespace = None
            if mode == "ns":
                namespace = f"compat-a-{transport}"
                server.create_namespace(namespace)
            config = base_config(server, transport, self.prefix(transport, mode), namespace)
            scenarios = list(COMMON)
            if transport == "ws":
                scenarios.append("s16_ws_reconnect")
                if mode == "jwt":
                    scenarios.append("s17_ws_auth")
            elif mode == "jwt":
                scenarios.append("s13_auth")
            config["scenarios"] = scenarios
            self.cache[key] = run_node("libsql_client.mjs", config)
        return self.cache[key]

    @staticmethod
    def prefix(transport: str, mode: str) -> str:
        return f"a_{transport}_{mode}_"

    def check(self, transport: str, mode: str, scenario: str) -> None:
        seen = ok(self.get(transport, mode), scenario)
        CHECKS[scenario](seen, RunContext(transport, self.prefix(transport, mode)))


@pytest.fixture(scope="module")
def runs(server_pool: ServerPool) -> Runs:
    return Runs(server_pool)


every_variant = pytest.mark.parametrize(
    ("transport", "mode"), [(t, m) for t in TRANSPORTS for m in MODES])


@every_variant
def test_s01_execute_ddl(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s01_ddl")


@every_variant
def test_s02_insert_positional_args(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s02_insert_positional")


@every_variant
def test_s03_named_args(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s03_named_args")


@every_variant
def test_s04_value_types_and_decltypes(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s04_types")


@every_variant
def test_s04_large_results_and_values(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s04_large")


@every_variant
def test_s05_batch_modes(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s05_batch_modes")


@every_variant
def test_s06_repeated_sql_and_sql_cache(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s06_sql_cache")


@every_variant
def test_s07_interactive_transactions(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s07_transactions")


@every_variant
def test_s08_concurrent_transactions_and_executes(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s08_concurrency")


@every_variant
def test_s08_overlapping_deferred_transactions_lose_no_update(runs: Runs, transport: str,
                                                              mode: str) -> None:
    runs.check(transport, mode, "s08_deferred_conflict")


@every_variant
def test_s10_execute_multiple(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s10_execute_multiple")


@every_variant
def test_s11_migrate(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s11_migrate")


@every_variant
def test_s12_error_codes(runs: Runs, transport: str, mode: str) -> None:
    runs.check(transport, mode, "s12_errors")


@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
def test_s13_jwt_auth_over_http(runs: Runs, transport: str) -> None:
    check_s13_auth(ok(runs.get(transport, "jwt"), "s13_auth"))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
def test_s14_close_leaves_no_open_streams(server_pool: ServerPool, unique: Callable[[str], str],
                                          transport: str, mode: str) -> None:
    server = server_pool.get(MODES[mode])
    namespace = None
    if mode == "ns":
        namespace = unique("compat-close")
        server.create_namespace(namespace)
    config = base_config(server, transport, unique(f"a14_{transport}") + "_", namespace)
    before = len(server.live_streams())
    seen = ok(run_node("libsql_client.mjs", {**config, "scenarios": ["s14_close"]}),
              "s14_close")
    assert seen == {"closed": True, "openTxClosed": True, "pendingRequests": 0}
    server.assert_no_new_streams(before)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_s09_stream_expiry(server_pool: ServerPool, unique: Callable[[str], str],
                           transport: str) -> None:
    server = server_pool.get(SHORT_EXPIRY)
    config = base_config(server, transport, unique(f"a09_{transport}") + "_")
    config["expirySleepMs"] = int((server.stream_expiry_s + 1.5) * 1000)
    seen = ok(run_node("libsql_client.mjs", {**config, "scenarios": ["s09_stream_expiry"]}),
              "s09_stream_expiry")
    if transport == "ws":
        # WebSocket streams live as long as the socket: the idle transaction survives.
        assert seen == {"afterIdle": {"rows": [[1]]}, "commit": "ok", "recovered": [[1]]}
        return
    error = seen["afterIdle"]
    assert "code" in error, error
    if error["code"] != "STREAM_EXPIRED":
        # protocol.md §11 scenario 9 also accepts a plain HTTP 400 ("invalid baton").
        http_status_error(error, 400, "STREAM_EXPIRED")
    assert seen["commit"]["code"] == "TRANSACTION_CLOSED", seen["commit"]
    assert seen["recovered"] == [[0]], "the expired transaction must have rolled back"


@pytest.mark.parametrize("mode", list(MODES))
def test_s15_s16_websocket_reconnect_after_60s(runs: Runs, mode: str) -> None:
    seen = ok(runs.get("ws", mode), "s16_ws_reconnect")
    assert seen["connections"] == 2, "the client opens a second socket once the first is 60 s old"
    assert seen["first"] == [[1]]
    assert seen["second"] == [[0]], "other connections do not see the open transaction"
    assert seen["inTx"] == [1], "the old socket still carries the transaction"
    assert seen["after"] == [[1]]
    assert seen["afterUsedNewSocket"] is True
    assert seen["oldSocketClosed"] is True


def test_s17_jwt_auth_over_websocket(runs: Runs) -> None:
    check_s17_ws_auth(ok(runs.get("ws", "jwt"), "s17_ws_auth"))
