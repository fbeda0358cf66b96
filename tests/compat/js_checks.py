"""Assertions for the common @libsql/client scenarios of ``js/libsql_client.mjs``
(protocol.md §11 scenarios 1-12), shared by the single-node runs and the cluster runs.
Each ``check_<scenario>`` takes that scenario's observations."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tests.compat.expect import (
    NO_SUCH_TABLE_CODES,
    READ_ONLY_VIOLATION_CODES,
    big,
    http_status_error,
    raw,
    result_set,
)


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What a check needs to know about the run: the table prefix the script used and
    how many distinct SQL texts scenario 6 ran (more than the client's SQL cache)."""

    transport: str
    prefix: str

    @property
    def distinct_sql(self) -> int:
        return 120 if self.transport == "ws" else 40


def check_s01_ddl(seen: dict[str, Any], context: RunContext) -> None:
    assert seen["created"] == result_set()
    assert seen["info"] == [["id", "INTEGER"], ["name", "TEXT"], ["v", "REAL"], ["b", "BLOB"]]


def check_s02_insert_positional(seen: dict[str, Any], context: RunContext) -> None:
    assert seen["inserted"] == result_set(affected=1, rowid=1)
    # The JS number 42 is bound as a float and stays REAL in the REAL column.
    assert seen["selected"] == result_set(
        ("id", "name", "v", "b", "tv", "tb"), ("INTEGER", "TEXT", "REAL", "BLOB", "", ""),
        [[1, "alice", 42, raw(1, 2, 3), "real", "blob"]])


def check_s03_named_args(seen: dict[str, Any], context: RunContext) -> None:
    for prefix in ":@$":
        assert seen[f"{prefix}bare"] == [[2, "bob"]], prefix
        assert seen[f"{prefix}prefixed"] == [[1, "alice"]], prefix
    assert seen["insert"] == result_set(affected=1, rowid=3)


def check_s04_types(seen: dict[str, Any], context: RunContext) -> None:
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


def check_s04_large(seen: dict[str, Any], context: RunContext) -> None:
    assert seen["rowCount"] == 20000
    assert (seen["first"], seen["last"]) == ([1, "row 1"], [20000, "row 20000"])
    assert seen["sumX"] == 20000 * 20001 // 2
    assert seen["blobEqual"] is True and seen["textEqual"] is True
    assert seen["lengths"] == [1 << 20, 1 << 17]


def check_s05_batch_modes(seen: dict[str, Any], context: RunContext) -> None:
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


def check_s06_sql_cache(seen: dict[str, Any], context: RunContext) -> None:
    assert seen["same"] == [[1, big(i + 1)] for i in range(40)]
    assert seen["distinct"] == [[1, big(41 + i)] for i in range(40)]
    distinct_sql = context.distinct_sql
    assert seen["seen"] == [[i, 80] for i in range(distinct_sql)]
    assert seen["total"] == [[80, sum(range(40)) + sum(range(100, 140))]]


def check_s07_transactions(seen: dict[str, Any], context: RunContext) -> None:
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


def check_s08_concurrency(seen: dict[str, Any], context: RunContext) -> None:
    assert seen["outcomes"] == ["committed", "committed"] + [1] * 20
    assert seen["counter"] == [[2]]
    assert seen["log"] == [[20, sum(range(20))]]


def check_s08_deferred_conflict(seen: dict[str, Any], context: RunContext) -> None:
    committed = seen["outcomes"].count("committed")
    assert committed >= 1, seen
    assert seen["counter"] == [[committed]], f"lost update: {seen}"
    for outcome in seen["outcomes"]:
        if outcome != "committed":
            assert outcome["error"].get("code", "").startswith("SQLITE_BUSY"), outcome


def check_s10_execute_multiple(seen: dict[str, Any], context: RunContext) -> None:
    prefix = f"{context.prefix}s10"
    assert seen["ok"] is None
    assert seen["count"] == [[2, 3]]
    assert seen["failing"].get("code") in NO_SUCH_TABLE_CODES, seen["failing"]
    assert "no such table" in seen["failing"]["message"]
    # The script stops at the failing statement: b was created, c never was.
    assert seen["tables"] == [[f"{prefix}_b"]]


def check_s11_migrate(seen: dict[str, Any], context: RunContext) -> None:
    assert seen["migrated"] == [
        result_set(), result_set(), result_set(affected=1, rowid=1),
        result_set(("foreign_keys",), rows=[[0]])]
    assert seen["child"] == [[99]]


def check_s12_errors(seen: dict[str, Any], context: RunContext) -> None:
    assert seen["noSuchTable"].get("code") in NO_SUCH_TABLE_CODES, seen["noSuchTable"]
    assert "no such table" in seen["noSuchTable"]["message"]
    assert seen["unique"]["code"] == "SQLITE_CONSTRAINT", seen["unique"]
    assert "UNIQUE constraint failed" in seen["unique"]["message"]
    assert seen["tooFewArgs"]["code"] == "ARGS_INVALID", seen["tooFewArgs"]
    assert seen["tooManyArgs"]["code"] == "ARGS_INVALID", seen["tooManyArgs"]
    assert seen["twoStatements"]["code"] == "SQL_MANY_STATEMENTS", seen["twoStatements"]
    assert seen["stillWorks"] == [[1]]


def check_s13_auth(seen: dict[str, Any]) -> None:
    """Scenario 13 (HTTP, JWT server): tokens from the script's config."""
    assert seen["valid"] == {"rows": [[1]]}
    assert seen["rotated"] == {"rows": [[1]]}, "a token signed by the second key must work"
    http_status_error(seen["missing"]["error"], 401, "AUTH_HEADER_NOT_FOUND")
    http_status_error(seen["stranger"]["error"], 401, "AUTH_JWT_INVALID")
    http_status_error(seen["expired"]["error"], 401, "AUTH_JWT_EXPIRED")
    assert seen["readOnlySelect"] == {"rows": [[0]]}
    assert "error" in seen["readOnlyInsert"], seen["readOnlyInsert"]
    http_status_error(seen["readOnlyInsert"]["error"], 403, "AUTH_PERMISSION_DENIED")
    assert seen["after"] == [[0]]


def check_s17_ws_auth(seen: dict[str, Any]) -> None:
    """Scenario 17 (WebSocket, JWT server)."""
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


CHECKS: dict[str, Callable[[dict[str, Any], RunContext], None]] = {
    "s01_ddl": check_s01_ddl,
    "s02_insert_positional": check_s02_insert_positional,
    "s03_named_args": check_s03_named_args,
    "s04_types": check_s04_types,
    "s04_large": check_s04_large,
    "s05_batch_modes": check_s05_batch_modes,
    "s06_sql_cache": check_s06_sql_cache,
    "s07_transactions": check_s07_transactions,
    "s08_concurrency": check_s08_concurrency,
    "s08_deferred_conflict": check_s08_deferred_conflict,
    "s10_execute_multiple": check_s10_execute_multiple,
    "s11_migrate": check_s11_migrate,
    "s12_errors": check_s12_errors,
}
