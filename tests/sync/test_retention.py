"""Log retention for replicas and change consumers, across snapshots, compaction and a
restart; positions compacted away get an explicit SNAPSHOT_REQUIRED, never a gap."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.support.processes import ServerProcess, start_server
from tests.sync.conftest import SyncClient, wait_until

RETAIN = 40
SETTINGS = {"EDGELITE_SNAPSHOT_ENTRIES": "10", "EDGELITE_SNAPSHOT_TRAILING_ENTRIES": "0",
            "EDGELITE_RETAIN_ENTRIES": str(RETAIN), "EDGELITE_RETAIN_BYTES": "0"}


def metric(url: str, name: str) -> float:
    """A gauge's value (-1 while the member has not indexed its log yet)."""
    match = re.search(rf"^{name} (\S+)$", httpx.get(url + "/metrics").text, re.MULTILINE)
    return float(match.group(1)) if match is not None else -1.0


@pytest.fixture(scope="module")
def compacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("sync-retention"), namespaces=True,
                           admin=True, env=SETTINGS, name="compacting")
    yield process
    process.stop()


def test_retention_is_honoured_across_snapshots_and_a_restart(compacting: ServerProcess,
                                                              tmp_path: Path) -> None:
    busy = SyncClient(compacting.url, compacting.admin_url, "default")
    busy.admin("POST", "/v1/namespaces/quiet/create", {})
    quiet = busy.sibling("quiet")
    quiet.sql("CREATE TABLE q(x)")
    quiet_position = quiet.pull(0)["applied_index"]  # a replica of "quiet", up to date
    busy.sql("CREATE TABLE t(x)")
    for i in range(150):
        last = busy.sql("INSERT INTO t VALUES (?)", [i])
    wait_until(lambda: metric(compacting.url, "edgelite_log_retained_from_index") > 1,
               what="log compaction")
    check_window(busy, last)
    # A database that wrote nothing since its replica's position lost nothing to
    # compaction: that replica goes on without a new snapshot.
    assert quiet.pull(quiet_position)["entries"] == []

    compacting.stop()
    restarted = start_server(compacting.data_dir.parent, namespaces=True, admin=True,
                             env=SETTINGS, name="compacting", port=compacting.port)
    compacting.process, compacting.admin_port = restarted.process, restarted.admin_port
    check_window(busy, last)
    busy.http.close()


def check_window(busy: SyncClient, last: int) -> None:
    wait_until(lambda: metric(busy.url, "edgelite_log_retained_from_index") > 1,
               what="the retained range in /metrics")
    first = int(metric(busy.url, "edgelite_log_retained_from_index"))
    applied = busy.info()["applied_index"]
    assert applied - first + 1 >= RETAIN, (first, applied)  # the window is kept
    inside = busy.pull(applied - RETAIN)
    assert inside["entries"][-1][0] == last
    stale = busy.get("/v1/sync/pull", since=0)
    assert stale.status_code == 410
    body = stale.json()
    assert body["code"] == "SNAPSHOT_REQUIRED" and body["retained_from_index"] >= first - 1
    assert "/v1/sync/snapshot" in body["message"]
    changes = busy.get("/v1/changes", since=0, wait_ms=0)
    assert changes.status_code == 410 and changes.json()["code"] == "SNAPSHOT_REQUIRED"
    assert busy.info()["retained_from_index"] >= first - 1


def test_a_replica_told_to_rebootstrap_continues_from_the_snapshot(
        compacting: ServerProcess, tmp_path: Path) -> None:
    client = SyncClient(compacting.url, compacting.admin_url, "default")
    client.sql("CREATE TABLE IF NOT EXISTS t(x)")
    for i in range(30):
        client.sql("INSERT INTO t VALUES (?)", [i])
    wait_until(lambda: client.get("/v1/sync/pull", since=1).status_code == 410,
               what="compaction past index 1")
    replica = client.replica(tmp_path / "replica.db")
    written = client.sql("INSERT INTO t VALUES ('after')")
    pulled = msgspec.msgpack.decode(client.get("/v1/sync/pull", since=replica.index).content)
    replica.apply(pulled["entries"])
    assert replica.index == written
    assert replica.rows("SELECT count(*) FROM t") == [tuple(client.rows(
        "SELECT count(*) FROM t")[0])]
    client.http.close()
