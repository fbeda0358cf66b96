"""The change stream: every change once, in order, across consumer kills (-9)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import edgelite
from edgelite.replica.errors import SnapshotRequiredError
from tests.replica.servers import execute, wait_until
from tests.support.processes import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("changes-server"), admin=True)
    yield process
    process.stop()


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    return [json.loads(line) for line in data[:data.rfind(b"\n") + 1].decode().splitlines()]


def test_changes_iterator_decodes_rows(server: ServerProcess) -> None:
    index = execute(server.url, "CREATE TABLE cs_rows(id INTEGER PRIMARY KEY, v TEXT, b BLOB)")
    execute(server.url, "INSERT INTO cs_rows VALUES (1, 'a', x'00ff')",
            "INSERT INTO cs_rows VALUES (2, 'z', NULL)")
    execute(server.url, "UPDATE cs_rows SET v = 'b' WHERE id = 1")
    execute(server.url, "DELETE FROM cs_rows WHERE id = 1")
    with edgelite.changes(server.url, since=index, tables=["cs_rows"]) as stream:
        got = [next(stream) for _ in range(4)]
    assert [(c.op, c.pk) for c in got] == [("insert", {"id": 1}), ("insert", {"id": 2}),
                                           ("update", {"id": 1}), ("delete", {"id": 1})]
    assert got[0].new == {"id": 1, "v": "a", "b": b"\x00\xff"} and got[0].old is None
    assert got[2].old is not None and got[2].old["v"] == "a"
    assert got[2].new is not None and got[2].new["v"] == "b"
    assert got[3].new is None and got[3].old is not None
    assert got[0].index == got[1].index < got[2].index < got[3].index  # one per transaction
    assert len({c.cursor for c in got}) == 4
    # Resuming from a cursor inside an entry gives the rest of it, then what follows.
    with edgelite.changes(server.url, since=got[0].cursor, tables=["cs_rows"]) as stream:
        rest = [next(stream) for _ in range(3)]
    assert [c.cursor for c in rest] == [c.cursor for c in got[1:]]


def test_killed_and_resumed_consumer_sees_every_change_once_in_order(
        tmp_path: Path, server: ServerProcess) -> None:
    execute(server.url, "CREATE TABLE cs_kill(id INTEGER PRIMARY KEY, n INTEGER)",
            "INSERT INTO cs_kill VALUES (-1, 0)")
    start = execute(server.url, "UPDATE cs_kill SET n = 0")
    out = tmp_path / "seen.jsonl"
    total_rows = 300  # row changes: 100 transactions of 3 (a row each)
    done = threading.Event()

    def write() -> None:
        conn = edgelite.connect(server.url)
        for i in range(0, total_rows, 3):  # three row changes per transaction
            conn.execute("INSERT INTO cs_kill VALUES (?, 0)", (i,))
            conn.execute("INSERT INTO cs_kill VALUES (?, 0)", (i + 1,))
            conn.execute("UPDATE cs_kill SET n = n + 1 WHERE id = -1")
            conn.commit()
        conn.close()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    rng = random.Random(6)
    out.write_text(json.dumps({"cursor": str(start)}) + "\n")  # start after the setup
    command = [sys.executable, "-m", "tests.replica.consumer", server.url, "cs_kill", str(out)]
    try:
        for _ in range(6):
            consumer = subprocess.Popen(command, cwd=ROOT)
            time.sleep(rng.uniform(0.2, 0.8))
            consumer.kill()
            consumer.wait()
        consumer = subprocess.Popen(command, cwd=ROOT)
        writer.join()
        wait_until(lambda: len(_lines(out)) >= total_rows, timeout_s=30,
                   what="the consumer saw every change")
    finally:
        consumer.kill()
        consumer.wait()
        writer.join()
    seen = _lines(out)[1:]
    with edgelite.changes(server.url, since=start, tables=["cs_kill"]) as stream:
        reference = [next(stream) for _ in range(total_rows)]
    assert [s["cursor"] for s in seen] == [c.cursor for c in reference]
    assert [(s["op"], s["pk"]) for s in seen] == [(c.op, c.pk) for c in reference]


def test_falling_behind_retention_is_an_error_not_a_gap(tmp_path: Path) -> None:
    settings = {"EDGELITE_SNAPSHOT_ENTRIES": "10", "EDGELITE_SNAPSHOT_TRAILING_ENTRIES": "0",
                "EDGELITE_RETAIN_ENTRIES": "5", "EDGELITE_RETAIN_BYTES": "0"}
    server = start_server(tmp_path, env=settings, name="short-retention")
    try:
        execute(server.url, "CREATE TABLE cs_old(id INTEGER PRIMARY KEY)")
        for i in range(60):
            execute(server.url, f"INSERT INTO cs_old VALUES ({i})")
        stream = edgelite.changes(server.url, since=1, reconnect_s=5)
        with pytest.raises(SnapshotRequiredError, match="missed changes"):
            for _ in range(100):
                next(stream)
        stream.close()
    finally:
        server.stop()
