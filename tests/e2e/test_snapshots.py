"""Log compaction and catch-up by snapshot, with real processes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from edgelite.storage.snapshot_files import backup_file
from tests.e2e.test_cluster import converged, follower
from tests.support.cluster import Cluster

SMALL_SNAPSHOTS = {"EDGELITE_SNAPSHOT_ENTRIES": "20", "EDGELITE_SNAPSHOT_TRAILING_ENTRIES": "0",
                   "EDGELITE_RETAIN_ENTRIES": "0"}


def _metric(cluster: Cluster, member: object, name: str) -> float:
    text = cluster.http.get(member.url + "/metrics").text  # type: ignore[attr-defined]
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_lagging_follower_and_new_member_catch_up_by_snapshot(tmp_path: Path) -> None:
    cluster = Cluster.start(tmp_path, 3, env=SMALL_SNAPSHOTS, extra_args=(
        "--enable-namespaces",))
    try:
        leader = cluster.leader()
        cluster.http.post(leader.admin_url + "/v1/namespaces/other/create", json={},
                          timeout=30)
        cluster.execute(leader, "CREATE TABLE s(id INTEGER PRIMARY KEY AUTOINCREMENT, v)")
        lagging = follower(cluster)
        cluster.kill(lagging.node_id)
        for i in range(120):
            assert cluster.execute(leader, "INSERT INTO s(v) VALUES (?)", [i]).status_code \
                == 200
        deadline = time.monotonic() + 20
        # One snapshot after the kill compacts (no trailing entries) past the lagging
        # member's log; how many the leader takes depends on how fast the writes ran.
        while _metric(cluster, leader, "edgelite_raft_snapshots_taken_total") < 1:
            assert time.monotonic() < deadline, "the leader took no snapshots"
            time.sleep(0.2)
        time.sleep(1.5)  # let a snapshot after the last write compact the log
        cluster.launch(lagging)
        newcomer = cluster.join("n4", learner=True)
        converged(cluster)
        converged(cluster, "other")
        for member in (lagging, newcomer):
            assert cluster.rows(member, "SELECT count(*), max(id) FROM s") == [[120, 120]]
            assert _metric(cluster, member, "edgelite_raft_snapshots_received_total") >= 1
        # A member restarted after snapshots and compaction starts from its snapshot.
        cluster.restart(leader.node_id)
        cluster.wait_for_leader()
        converged(cluster)
        writer = cluster.leader()
        assert cluster.execute(writer, "INSERT INTO s(v) VALUES ('after')").status_code == 200
        assert cluster.rows(writer, "SELECT max(id) FROM s") == [[121]]
        converged(cluster)
    finally:
        cluster.close()


def test_a_database_that_lost_applied_writes_is_restored_from_the_snapshot(
        tmp_path: Path) -> None:
    """Databases commit without fsync (the Raft log is the durability point). Should a
    database file come back older than what the compacted log can replay (a power loss
    that beat ``make_files_durable``, a restored backup), the member restores it from
    its newest snapshot at start-up and replays the rest: nothing is lost."""
    cluster = Cluster.start(tmp_path, 1, env=SMALL_SNAPSHOTS)
    try:
        member = cluster.leader()
        cluster.execute(member, "CREATE TABLE s(id INTEGER PRIMARY KEY, v)")
        cluster.kill(member.node_id)
        database = member.data_dir / "namespaces" / "default" / "data.db"
        old_copy = tmp_path / "old.db"
        backup_file(database, old_copy)  # the state before the writes below
        cluster.launch(member)
        cluster.wait_serving(member)
        for i in range(100):
            assert cluster.execute(member, "INSERT INTO s(v) VALUES (?)", [i]).status_code \
                == 200
        deadline = time.monotonic() + 20
        while _metric(cluster, member, "edgelite_raft_snapshots_taken_total") < 1:
            assert time.monotonic() < deadline, "no snapshots were taken"
            time.sleep(0.2)
        cluster.kill(member.node_id)
        for suffix in ("-wal", "-shm"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(old_copy, database)
        cluster.launch(member)
        cluster.wait_serving(member)
        assert cluster.rows(member, "SELECT count(*), min(v), max(v) FROM s") == [[100, 0, 99]]
        assert "restoring it from the snapshot" in cluster.logs()
    finally:
        cluster.close()
