"""Interop both ways with npm ``@libsql/client`` (the most used libSQL client) on the same
database: what one writes, the other reads back with the same values and types."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import edgelite
from tests.support.processes import ServerProcess

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "js" / "interop.mjs"
CLIENT_ENTRY = REPO / "tests/compat/js/node_modules/@libsql/client/lib-esm/node.js"
NODE_TIMEOUT_S = 60

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not CLIENT_ENTRY.is_file(),
                       reason="npm clients missing: `make test` installs tests/compat/js"),
]


def run_node(url: str, table: str, action: str) -> Any:
    env = dict(os.environ, LIBSQL_CLIENT_ENTRY=str(CLIENT_ENTRY),
               CLIENT_INTEROP=json.dumps({"url": url, "table": table, "action": action}))
    completed = subprocess.run(["node", str(SCRIPT)], env=env, capture_output=True,
                               timeout=NODE_TIMEOUT_S, check=False)
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    return json.loads(completed.stdout)


def decode(tagged: Any) -> Any:
    """Undo the script's tagging of bigint / bytes / number."""
    if isinstance(tagged, dict):
        if "bigint" in tagged:
            return int(tagged["bigint"])
        if "bytes" in tagged:
            return base64.b64decode(tagged["bytes"])
        if "number" in tagged:
            return float(tagged["number"])
    return tagged


@pytest.mark.parametrize("js_transport", ["http", "ws"])
@pytest.mark.parametrize("python_transport", ["http", "ws"])
def test_javascript_writes_python_reads(server: ServerProcess, table: str, js_transport: str,
                                        python_transport: str) -> None:
    js_url = server.url if js_transport == "http" else server.ws_url
    assert run_node(js_url, table, "write") == {"written": True}
    conn = edgelite.connect(server.url if python_transport == "http" else server.ws_url)
    rows = conn.execute(f"SELECT k, v FROM {table} ORDER BY k").fetchall()
    conn.close()
    assert rows == [(1, 9007199254740993), (2, 1.5), (3, "h\u00e9llo \u2713"),
                    (4, b"\x00\x01\xff"), (5, None), (6, "tx")]
    assert [type(v) for _, v in rows] == [int, float, str, bytes, type(None), str]


@pytest.mark.parametrize("python_transport", ["http", "ws"])
def test_python_writes_javascript_reads(server: ServerProcess, table: str,
                                        python_transport: str) -> None:
    conn = edgelite.connect(server.url if python_transport == "http" else server.ws_url)
    conn.execute(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, v)")
    conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", [
        (1, -(2**63)), (2, 2**63 - 1), (3, 0.25), (4, "\u00fcn\u00efc\u00f6d\u00e9 \U0001f600"),
        (5, b"\xff\x00"), (6, None)])
    conn.execute(f"INSERT INTO {table} VALUES (7, 'rolled back')")
    conn.rollback()
    with conn:
        conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", [
            (1, -(2**63)), (2, 2**63 - 1), (3, 0.25),
            (4, "\u00fcn\u00efc\u00f6d\u00e9 \U0001f600"), (5, b"\xff\x00"), (6, None)])
    conn.close()
    result = run_node(server.url, table, "read")
    assert result["columns"] == ["k", "v"]
    rows = [(decode(k), decode(v)) for k, v in result["rows"]]
    assert rows == [(1, -(2**63)), (2, 2**63 - 1), (3, 0.25),
                    (4, "\u00fcn\u00efc\u00f6d\u00e9 \U0001f600"), (5, b"\xff\x00"), (6, None)]
    assert [type(v) for _, v in rows] == [int, int, float, str, bytes, type(None)]
