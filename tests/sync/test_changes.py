"""The change stream (``GET /v1/changes``) on a real server: NDJSON and SSE, exact resume,
heartbeats, filters, and a consumer killed at random moments that loses nothing."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.sync.conftest import SyncClient, wait_until


def events(client: SyncClient, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("wait_ms", 0)
    response = client.get("/v1/changes", **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def sse_events(text: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of each server-sent event."""
    found = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return found


def test_row_changes_are_decoded_with_names(client: SyncClient) -> None:
    client.sql("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, data BLOB)")
    client.sql("CREATE TABLE readings(v REAL)")
    inserted = client.sql("INSERT INTO notes VALUES (1, 'one', x'00ff'), (2, 'two', NULL)")
    client.sql("UPDATE notes SET body = 'uno' WHERE id = 1")
    client.sql("DELETE FROM notes WHERE id = 2")
    client.sql("INSERT INTO readings VALUES (1.5)")
    found = events(client, since=0)
    schema = [e["sql"] for e in found if e["type"] == "schema"]
    assert schema == ["CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, data BLOB)",
                      "CREATE TABLE readings(v REAL)"]
    changes = [e for e in found if e["type"] == "change"]
    assert [(c["table"], c["op"], c["pk"]) for c in changes] == [
        ("notes", "insert", {"id": 1}), ("notes", "insert", {"id": 2}),
        ("notes", "update", {"id": 1}), ("notes", "delete", {"id": 2}),
        ("readings", "insert", {"rowid": 1})]
    first = changes[0]
    assert first["index"] == inserted and first["cursor"] == f"{inserted}:0"
    assert first["old"] is None
    assert first["new"] == {"id": 1, "body": "one", "data": {"base64": "AP8="}}
    assert changes[2]["old"] == {"id": 1, "body": "one"} and changes[2]["new"] == {"body": "uno"}
    assert changes[3]["old"] == {"id": 2, "body": "two", "data": None}
    assert changes[3]["new"] is None
    assert all(c["committed_at_ms"] > 1_600_000_000_000 for c in changes)
    assert found[-1]["type"] == "end" and found[-1]["index"] >= changes[-1]["index"]


def test_tables_filter_and_exact_resume(client: SyncClient) -> None:
    client.sql("CREATE TABLE a(x)")
    client.sql("CREATE TABLE b(x)")
    client.sql("INSERT INTO a VALUES (1), (2), (3)")
    client.sql("INSERT INTO b VALUES (1)")
    only_a = [e for e in events(client, since=0, tables="a") if e["type"] == "change"]
    assert [e["table"] for e in only_a] == ["a", "a", "a"]
    everything = [e for e in events(client, since=0) if e["type"] == "change"]
    for position, event in enumerate(everything):
        rest = [e for e in events(client, since=event["cursor"]) if e["type"] == "change"]
        assert rest == everything[position + 1:]


def test_a_filter_skipping_many_changes_still_reaches_the_end(client: SyncClient) -> None:
    client.sql("CREATE TABLE a(x)")
    client.sql("CREATE TABLE b(x)")
    client.sql("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c "
               "WHERE n < 1200) INSERT INTO b SELECT n FROM c")  # more than one batch
    for i in range(3):
        client.sql("INSERT INTO b VALUES (?)", [i])
    written = client.sql("INSERT INTO a VALUES ('after them')")
    found = events(client, since=0, tables="a")
    assert [e["index"] for e in found if e["type"] == "change"] == [written]
    assert found[-1]["type"] == "end" and found[-1]["index"] >= written


def test_sse_ids_are_cursors_and_last_event_id_resumes(client: SyncClient) -> None:
    client.sql("CREATE TABLE t(x)")
    for i in range(4):
        client.sql("INSERT INTO t VALUES (?)", [i])
    text = client.get("/v1/changes", since=0, wait_ms=0, format="sse").text
    found = sse_events(text)
    changes = [(i, d) for i, kind, d in found if kind == "change"]
    assert [d["new"]["x"] for _, d in changes] == [0, 1, 2, 3]
    assert all(i == d["cursor"] for i, d in changes)
    assert found[-1][1] == "end"
    headers = dict(client.headers, **{"Last-Event-ID": changes[1][0]})
    resumed = client.http.get(client.url + "/v1/changes", headers=headers,
                              params={"since": 0, "wait_ms": 0, "format": "sse"})
    assert [d["new"]["x"] for _, kind, d in sse_events(resumed.text) if kind == "change"] \
        == [2, 3]


def test_a_live_stream_sees_new_writes_and_heartbeats_while_idle(client: SyncClient) -> None:
    client.sql("CREATE TABLE t(x)")
    start = events(client, since=0)[-1]["cursor"]
    lines: list[dict[str, Any]] = []

    def consume() -> None:
        params = {"since": start, "wait_ms": "1500", "heartbeat_ms": "100"}
        with client.http.stream("GET", client.url + "/v1/changes", params=params,
                                headers=client.headers) as response:
            for line in response.iter_lines():
                lines.append(json.loads(line))

    reader = threading.Thread(target=consume)
    reader.start()
    wait_until(lambda: any(e["type"] == "heartbeat" for e in lines), what="a heartbeat")
    written = client.sql("INSERT INTO t VALUES ('live')")
    wait_until(lambda: any(e["type"] == "change" for e in lines), what="the live change")
    reader.join(timeout=10)
    change = next(e for e in lines if e["type"] == "change")
    assert change["index"] == written and change["new"] == {"rowid": 1, "x": "live"}
    heartbeats = [e for e in lines if e["type"] == "heartbeat"]
    assert all(int(h["cursor"]) >= int(start) for h in heartbeats)
    assert lines[-1]["type"] == "end"


@pytest.mark.parametrize(("params", "message"), [
    ({}, "`since` is required"), ({"since": "x"}, "invalid change cursor"),
    ({"since": "1:2:3"}, "invalid change cursor"), ({"since": "0", "format": "xml"}, "ndjson"),
    ({"since": "0", "tables": ","}, "`tables`"),
    ({"since": "0", "heartbeat_ms": "1"}, "`heartbeat_ms` must be between"),
])
def test_bad_change_requests_are_named(client: SyncClient, params: dict[str, str],
                                       message: str) -> None:
    response = client.http.get(client.url + "/v1/changes", params=params,
                               headers=client.headers)
    assert response.status_code == 400 and message in response.json()["message"]


def test_a_killed_consumer_resumes_and_sees_every_change_once_in_order(
        client: SyncClient, tmp_path: Path) -> None:
    client.sql("CREATE TABLE t(n INTEGER PRIMARY KEY, writer TEXT)")
    out = tmp_path / "consumed.ndjson"
    done = threading.Event()

    def write() -> None:
        n = 0
        while n < 240:
            count = 6 if n % 30 == 0 else 1  # some entries hold several changes
            values = ", ".join(f"({n + k}, 'w')" for k in range(count))
            client.sql(f"INSERT INTO t VALUES {values}")
            n += count
            time.sleep(0.004)
        done.set()

    def lines() -> int:
        return out.read_bytes().count(b"\n") if out.exists() else 0

    writer = threading.Thread(target=write)
    writer.start()
    rng = random.Random(7)
    progress = []
    try:
        while not done.is_set():
            before = lines()
            consumer = _consume(client, out, wait_ms=60_000)
            deadline = time.monotonic() + 5
            while lines() == before and time.monotonic() < deadline and not done.is_set():
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.1))  # killed while it is consuming
            consumer.kill()
            consumer.wait(timeout=10)
            progress.append(lines() - before)
    finally:
        writer.join(timeout=60)
    final = _consume(client, out, wait_ms=300)
    assert final.wait(timeout=60) == 0
    consumed = [json.loads(line) for line in out.read_text().splitlines()]
    expected = [e for e in events(client, since=0) if e["type"] == "change"]
    assert [e["cursor"] for e in consumed] == [e["cursor"] for e in expected]
    # (inside one transaction a changeset orders rows its own way: compare as a set)
    assert sorted(e["new"]["n"] for e in consumed) == list(range(240))
    assert sum(1 for p in progress if p) >= 2, progress  # killed mid-stream, more than once


def _consume(client: SyncClient, out: Path, *, wait_ms: int) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen([sys.executable, "-m", "tests.sync.consumer", client.url,
                             client.namespace, str(out), str(wait_ms)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

