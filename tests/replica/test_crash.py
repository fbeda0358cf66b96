"""A replica process killed (-9) in the middle of syncing leaves a consistent file:
it opens, nothing it wrote is lost or doubled, and it finishes the sync."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import edgelite
from edgelite.replica import ReplicaConnection, files
from edgelite.storage.content_hash import content_hash as file_hash
from tests.replica.servers import content_hash, execute, query
from tests.support.processes import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = start_server(tmp_path / "server", admin=True)
    yield process
    process.stop()


def test_replica_killed_mid_sync_is_consistent(tmp_path: Path, server: ServerProcess) -> None:
    execute(server.url, "CREATE TABLE readings(seq INTEGER, t REAL)")
    path = tmp_path / "r.db"
    rng = random.Random(9)
    written = 0
    for _ in range(5):
        rows = 600
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.replica.syncer", str(path), server.url, str(rows)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "syncing"
        written += rows
        time.sleep(rng.uniform(0.0, 0.4))
        process.kill()
        process.wait()
        process.stdout.close()
        assert files.inspect_file(path).state is files.FileState.VALID
        conn = edgelite.connect(str(path), sync_url=server.url, offline=True)
        assert conn.execute("SELECT count(*), count(DISTINCT seq) FROM readings").fetchone() \
            == (written, written)
        conn.close()
    conn = edgelite.connect(str(path), sync_url=server.url, offline=True)
    assert isinstance(conn, ReplicaConnection)
    while conn.sync().pending:
        pass
    conn.close()
    assert query(server.url, "SELECT count(*), count(DISTINCT seq) FROM readings") == [
        (written, written)]
    assert file_hash(path) == content_hash(server.admin_url)
