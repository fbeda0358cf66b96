"""Expected-value builders for observations printed by the node scripts.

The scripts tag what JSON cannot carry (lib.mjs ``enc``): ``{"$bigint": "1"}`` for a
JS bigint, ``{"$bytes": [1, 2]}`` for an ArrayBuffer/Uint8Array, ``{"$undefined": true}``.
"""

from __future__ import annotations

from typing import Any

import pytest

UNDEFINED = {"$undefined": True}

# Codes the plan (protocol.md §11 scenario 12) accepts for "no such table": sqld
# 0.24.32 answers SQLITE_UNKNOWN from the step, the spec example (§3.3) shows
# SQL_INPUT_ERROR from prepare.
NO_SUCH_TABLE_CODES = {"SQL_INPUT_ERROR", "SQLITE_UNKNOWN"}

# A write inside `BEGIN TRANSACTION READONLY` must fail (issue 2 item 3: "accepted and
# enforced read-only"); protocol.md fixes no code, SQLite itself reports one of these.
READ_ONLY_VIOLATION_CODES = {"SQLITE_READONLY", "SQLITE_AUTH"}


def big(value: int) -> dict[str, str]:
    return {"$bigint": str(value)}


def raw(*values: int) -> dict[str, list[int]]:
    return {"$bytes": list(values)}


def result_set(columns: tuple[str, ...] = (), types: tuple[str, ...] | None = None,
               rows: list[list[Any]] | None = None, affected: int = 0,
               rowid: int | None = None) -> dict[str, Any]:
    """A @libsql/client ResultSet as lib.mjs ``resultSet`` prints it."""
    return {
        "columns": list(columns),
        "columnTypes": list(types) if types is not None else [""] * len(columns),
        "rows": rows or [],
        "rowsAffected": affected,
        "lastInsertRowid": big(rowid) if rowid is not None else UNDEFINED,
    }


def ok(results: dict[str, Any], name: str) -> Any:
    """The observations of scenario ``name``; fails the test if the scenario threw."""
    assert "$watchdog" not in results or name in results, results.get("$watchdog")
    assert name in results, f"scenario {name} did not run: {sorted(results)}"
    outcome = results[name]
    if "threw" in outcome:
        pytest.fail(f"scenario {name} threw: {outcome['threw']}")
    return outcome["ok"]


def http_status_error(error: dict[str, Any], status: int, code: str) -> None:
    """An HTTP-level rejection as @libsql/client reports it.

    sqld's bodies are ``{"error": ...}`` only, so the client says ``SERVER_ERROR:
    Server returned HTTP status <status>``. A server that adds ``message`` and
    ``code`` keys under ``Content-Type: application/json`` (allowed, protocol.md
    §3.7) surfaces that code instead; then it must be the right one.
    """
    assert error.get("code") in ("SERVER_ERROR", code), error
    if error["code"] == "SERVER_ERROR":
        assert f"HTTP status {status}" in error["message"], error
