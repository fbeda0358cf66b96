"""A replica whose copy of a database was damaged stops serving it and repairs it from
the leader, while the log and the other databases carry on (ARCHITECTURE §3)."""

from __future__ import annotations

import time
from pathlib import Path

import apsw

from tests.e2e.test_cluster import converged, follower
from tests.support.cluster import Cluster


def test_diverged_replica_is_copied_back_from_the_leader(tmp_path: Path) -> None:
    cluster = Cluster.start(tmp_path, 3)
    try:
        leader = cluster.leader()
        cluster.execute(leader, "CREATE TABLE d(id INTEGER PRIMARY KEY, v TEXT)")
        for i in range(5):
            cluster.execute(leader, "INSERT INTO d(v) VALUES (?)", [f"v{i}"])
        converged(cluster)
        victim = follower(cluster)
        cluster.kill(victim.node_id)
        # Damage the replica behind edgelite's back: a row the leader will update.
        damaged = apsw.Connection(str(victim.data_dir / "namespaces/default/data.db"))
        damaged.execute("DELETE FROM d WHERE id = 3")
        damaged.close()
        cluster.launch(victim)
        cluster.wait_for_leader()
        leader = cluster.leader()
        assert cluster.execute(leader, "UPDATE d SET v = 'changed' WHERE id = 3") \
            .status_code == 200
        for i in range(5, 10):
            cluster.execute(leader, "INSERT INTO d(v) VALUES (?)", [f"v{i}"])
        converged(cluster, timeout_s=60)
        assert cluster.rows(victim, "SELECT v FROM d WHERE id = 3") == [["changed"]]
        assert cluster.rows(victim, "SELECT count(*) FROM d") == [[10]]
        log = victim.log_path.read_text()
        assert "diverged at index" in log and "copied back from" in log
    finally:
        cluster.close()


def test_refuses_requests_while_repairing_is_bounded(tmp_path: Path) -> None:
    """The repair finishes without any client request: time-bounded, not load-bound."""
    cluster = Cluster.start(tmp_path, 3)
    try:
        leader = cluster.leader()
        cluster.execute(leader, "CREATE TABLE e(id INTEGER PRIMARY KEY, v)")
        cluster.execute(leader, "INSERT INTO e VALUES (1, 'x')")
        converged(cluster)
        victim = follower(cluster)
        cluster.kill(victim.node_id)
        damaged = apsw.Connection(str(victim.data_dir / "namespaces/default/data.db"))
        damaged.execute("INSERT INTO e VALUES (2, 'only here')")
        damaged.close()
        cluster.launch(victim)
        leader = cluster.wait_for_leader()
        cluster.wait_serving(victim)
        cluster.execute(leader, "INSERT INTO e VALUES (2, 'from the leader')")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = cluster.execute(victim, "SELECT v FROM e WHERE id = 2",
                                       consistency="eventual")
            if response.status_code == 200 and response.json()["results"][0]["type"] == "ok":
                rows = response.json()["results"][0]["response"]["result"]["rows"]
                if rows == [[{"type": "text", "value": "from the leader"}]]:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the replica was not repaired:\n{cluster.logs()}")
        converged(cluster)
    finally:
        cluster.close()
