"""Helpers for replica tests against real server processes.

A *server* here is anything with a client URL and an admin URL: a dev server
(``tests.support.processes``) or a member of a cluster (``tests.support.cluster``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

import edgelite

T = TypeVar("T")


def set_policy(admin_url: str, table: str, policy: str, namespace: str = "default") -> None:
    response = httpx.post(f"{admin_url}/v1/namespaces/{namespace}/conflict-policy",
                          json={"table": table, "policy": policy}, timeout=10)
    assert response.status_code == 200, response.text


def content_hash(admin_url: str, namespace: str = "default") -> tuple[int, str]:
    response = httpx.get(f"{admin_url}/v1/namespaces/{namespace}/hash", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    return int(body["applied_index"] if "applied_index" in body else body["index"]), \
        str(body["hash"] if "hash" in body else body["sha256"])


def query(url: str, sql: str, args: tuple[Any, ...] = (), *,
          consistency: str = "strong") -> list[tuple[Any, ...]]:
    """Rows from the server itself (not a replica)."""
    conn = edgelite.connect(url, consistency=consistency, autocommit=True)
    try:
        rows = conn.execute(sql, args).fetchall()
    finally:
        conn.close()
    return [tuple(row) for row in rows]


def execute(url: str, *statements: str) -> int:
    """Run statements on the server in one transaction; the commit's index."""
    conn = edgelite.connect(url)
    try:
        for sql in statements:
            conn.execute(sql)
        conn.commit()
        index = conn.replication_index
    finally:
        conn.close()
    assert index is not None
    return index


def wait_until(check: Callable[[], T], timeout_s: float = 20.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout_s}s: {what or check} (last {last!r})")
