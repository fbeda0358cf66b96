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
from tests.compat.expect import (
    NO_SUCH_TABLE_CODES,
    READ_ONLY_VIOLATION_CODES,
    big,
    http_status_error,
    ok,
    raw,
    result_set,
)
from tests.compat.harness import JWT, NAMESPACES, PLAIN, SHORT_EXPIRY, CompatServer, run_node

pytestmark = [pytest.mark.usefixtures("node"), pytest.mark.timeout(300)]

MODES = {"plain": PLAIN, "jwt": JWT, "ns": NAMESPACES}
TRANSPORTS = ("http", "libsql", "ws")
HTTP_TRANSPORTS = ("http", "libsql")
COMMON = ["s01_ddl", "s02_insert_positional", "s03_named_args", "s04_types", "s04_large",
          "s05_batch_modes", "s06_sql_cache", "s07_transactions", "s08_concurrency",
          "s08_deferred_conflict",
          "s10_execute_multiple", "s11_migrate", "s12_errors"]


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
        config["tokens"] = {
            "stranger": server.keys.stranger.token(a="rw"),
            "expired": server.keys.expired_token(),
            "readOnly": server.keys.ro_token(),
            "rotated": server.keys.rotated.token(a="rw"),
        }
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
            config = base_config(server, transport, f"a_{transport}_{mode}_", namespace)
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


@pytest.fixture(scope="module")
def runs(server_pool: ServerPool) -> Runs:
    return Runs(server_pool)


every_variant = pytest.mark.parametrize(
    ("transport", "mode"), [(t, m) for t in TRANSPORTS for m in MODES])


@every_variant
def test_s01_execute_ddl(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s01_ddl")
    assert seen["created"] == result_set()
    assert seen["info"] == [["id", "INTEGER"], ["name", "TEXT"], ["v", "REAL"], ["b", "BLOB"]]


@every_variant
def test_s02_insert_positional_args(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s02_insert_positional")
    assert seen["inserted"] == result_set(affected=1, rowid=1)
    # The JS number 42 is bound as a float and stays REAL in the REAL column.
    assert seen["selected"] == result_set(
        ("id", "name", "v", "b", "tv", "tb"), ("INTEGER", "TEXT", "REAL", "BLOB", "", ""),
        [[1, "alice", 42, raw(1, 2, 3), "real", "blob"]])


@every_variant
def test_s03_named_args(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s03_named_args")
    for prefix in ":@$":
        assert seen[f"{prefix}bare"] == [[2, "bob"]], prefix
        assert seen[f"{prefix}prefixed"] == [[1, "alice"]], prefix
    assert seen["insert"] == result_set(affected=1, rowid=3)


@every_variant
def test_s04_value_types_and_decltypes(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s04_types")
    unicode_text = "héllo wörld ✓ 日本語 🎉"
    assert seen["literals"] == result_set(
        ("n", "big", "max", "neg", "es", "eb", "uni", "f1"),
        rows=[[None, big(2**53 + 1), big(2**63 - 1), -2.5, "", raw(), unicode_text, 1.0]])
    assert seen["bound"] == result_set(
        ("big", "neg", "uni", "eb", "n", "t_big", "t_num"),
        rows=[[big(2**53 + 1), -2.5, "héllo ✓ 🎉", raw(), None, "integer", "real"]])
    assert seen["table"] == result_set(
        ("i", "r", "s", "bl", "n", "d", "x"),
        ("INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC", "DATETIME", ""),
        [[big(1), 1.5, "s", raw(0, 255), big(10), "2024-01-01", None]])


@every_variant
def test_s04_large_results_and_values(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s04_large")
    assert seen["rowCount"] == 20000
    assert (seen["first"], seen["last"]) == ([1, "row 1"], [20000, "row 20000"])
    assert seen["sumX"] == 20000 * 20001 // 2
    assert seen["blobEqual"] is True and seen["textEqual"] is True
    assert seen["lengths"] == [1 << 20, 1 << 17]


@every_variant
def test_s05_batch_modes(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s05_batch_modes")
    assert seen["write"] == [result_set(affected=1, rowid=1), result_set(affected=1, rowid=2),
                             result_set(("n",), rows=[[2]])]
    assert seen["deferred"] == [result_set(affected=1, rowid=3),
                                result_set(("name",), ("TEXT",), [["a"], ["b"], ["c"]])]
    assert seen["read"] == [result_set(("n",), rows=[[3]]), result_set(("m",), rows=[[3]])]
    # "read" batches begin with BEGIN TRANSACTION READONLY, which must be enforced.
    # sqld 0.24.32 maps it to a plain deferred transaction and lets the INSERT through.
    assert seen["writeInRead"].get("code") in READ_ONLY_VIOLATION_CODES, seen["writeInRead"]
    assert seen["writeInRead"]["name"] == "LibsqlBatchError"
    assert seen["writeInRead"]["statementIndex"] == 1
    failing = seen["failing"]
    assert (failing["name"], failing["code"], failing["statementIndex"]) == (
        "LibsqlBatchError", "SQLITE_CONSTRAINT", 1), failing
    assert "UNIQUE constraint failed" in failing["message"]
    assert seen["after"] == [["a"], ["b"], ["c"]]


@every_variant
def test_s06_repeated_sql_and_sql_cache(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s06_sql_cache")
    assert seen["same"] == [[1, big(i + 1)] for i in range(40)]
    assert seen["distinct"] == [[1, big(41 + i)] for i in range(40)]
    distinct_sql = 120 if transport == "ws" else 40
    assert seen["seen"] == [[i, 80] for i in range(distinct_sql)]
    assert seen["total"] == [[80, sum(range(40)) + sum(range(100, 140))]]


@every_variant
def test_s07_interactive_transactions(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s07_transactions")
    assert seen["inserted"] == result_set(affected=1, rowid=1)
    assert seen["inside"] == [1]
    assert seen["outsideDuring"] == []
    assert seen["afterCommit"] == {"closed": True, "names": [["committed"]]}
    assert seen["afterRollback"] == {"closed": True, "names": [["committed"]]}
    assert seen["afterClose"] == {"closed": True, "names": [["committed"], ["after close"]]}
    assert seen["readCount"] == [2]
    # transaction("read") = BEGIN TRANSACTION READONLY; sqld does not enforce it.
    assert seen["readWrite"].get("code") in READ_ONLY_VIOLATION_CODES, seen["readWrite"]
    assert seen["afterRead"] == [["committed"], ["after close"]]


@every_variant
def test_s08_concurrent_transactions_and_executes(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s08_concurrency")
    assert seen["outcomes"] == ["committed", "committed"] + [1] * 20
    assert seen["counter"] == [[2]]
    assert seen["log"] == [[20, sum(range(20))]]


@every_variant
def test_s08_overlapping_deferred_transactions_lose_no_update(runs: Runs, transport: str,
                                                              mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s08_deferred_conflict")
    committed = seen["outcomes"].count("committed")
    assert committed >= 1, seen
    assert seen["counter"] == [[committed]], f"lost update: {seen}"
    for outcome in seen["outcomes"]:
        if outcome != "committed":
            assert outcome["error"].get("code", "").startswith("SQLITE_BUSY"), outcome


@every_variant
def test_s10_execute_multiple(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s10_execute_multiple")
    prefix = f"a_{transport}_{mode}_s10"
    assert seen["ok"] is None
    assert seen["count"] == [[2, 3]]
    assert seen["failing"].get("code") in NO_SUCH_TABLE_CODES, seen["failing"]
    assert "no such table" in seen["failing"]["message"]
    # The script stops at the failing statement: b was created, c never was.
    assert seen["tables"] == [[f"{prefix}_b"]]


@every_variant
def test_s11_migrate(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s11_migrate")
    assert seen["migrated"] == [
        result_set(), result_set(), result_set(affected=1, rowid=1),
        result_set(("foreign_keys",), rows=[[0]])]
    assert seen["child"] == [[99]]


@every_variant
def test_s12_error_codes(runs: Runs, transport: str, mode: str) -> None:
    seen = ok(runs.get(transport, mode), "s12_errors")
    assert seen["noSuchTable"].get("code") in NO_SUCH_TABLE_CODES, seen["noSuchTable"]
    assert "no such table" in seen["noSuchTable"]["message"]
    assert seen["unique"]["code"] == "SQLITE_CONSTRAINT", seen["unique"]
    assert "UNIQUE constraint failed" in seen["unique"]["message"]
    assert seen["tooFewArgs"]["code"] == "ARGS_INVALID", seen["tooFewArgs"]
    assert seen["tooManyArgs"]["code"] == "ARGS_INVALID", seen["tooManyArgs"]
    assert seen["twoStatements"]["code"] == "SQL_MANY_STATEMENTS", seen["twoStatements"]
    assert seen["stillWorks"] == [[1]]


@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
def test_s13_jwt_auth_over_http(runs: Runs, transport: str) -> None:
    seen = ok(runs.get(transport, "jwt"), "s13_auth")
    assert seen["valid"] == {"rows": [[1]]}
    assert seen["rotated"] == {"rows": [[1]]}, "a token signed by the second key must work"
    http_status_error(seen["missing"]["error"], 401, "AUTH_HEADER_NOT_FOUND")
    http_status_error(seen["stranger"]["error"], 401, "AUTH_JWT_INVALID")
    http_status_error(seen["expired"]["error"], 401, "AUTH_JWT_EXPIRED")
    assert seen["readOnlySelect"] == {"rows": [[0]]}
    assert "error" in seen["readOnlyInsert"], seen["readOnlyInsert"]
    http_status_error(seen["readOnlyInsert"]["error"], 403, "AUTH_PERMISSION_DENIED")
    assert seen["after"] == [[0]]


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
    seen = ok(runs.get("ws", "jwt"), "s17_ws_auth")
    assert seen["valid"] == {"rows": [[1]]}
    assert seen["rotated"] == {"rows": [[1]]}
    assert seen["missing"]["error"]["code"] == "AUTH_HEADER_NOT_FOUND", seen["missing"]
    assert seen["stranger"]["error"]["code"] == "AUTH_JWT_INVALID", seen["stranger"]
    assert seen["expired"]["error"]["code"] == "AUTH_JWT_EXPIRED", seen["expired"]
    read_only = seen["readOnly"]
    assert read_only["select"] == {"rows": [[0]]}
    assert "error" in read_only["insert"], read_only
    assert read_only["insert"]["error"]["code"] != "HRANA_WEBSOCKET_ERROR", (
        "a permission error fails the statement, not the socket")
    assert read_only["again"] == {"rows": [[0]]}
    assert seen["after"] == [[0]]
