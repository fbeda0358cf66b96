"""Embedded replicas of a 3-node cluster: read-your-writes across nodes, a push whose
answer is lost, and a replica that fell behind the cluster's log retention."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import edgelite
from edgelite.replica import ReplicaConnection, SyncUnavailableError
from tests.replica.servers import execute, query
from tests.support.cluster import Cluster, Member
from tests.support.faultproxy import Direction, FaultProxy, Mode


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster.start(tmp_path_factory.mktemp("replica-cluster"), 3)
    yield started
    started.close()


def followers(cluster: Cluster) -> list[Member]:
    leader = cluster.leader()
    return [m for m in cluster.members.values() if m is not leader]


def test_read_your_writes_through_followers(tmp_path: Path, cluster: Cluster) -> None:
    first, second = followers(cluster)
    execute(cluster.leader().url, "CREATE TABLE ryw(id INTEGER PRIMARY KEY, v TEXT)")
    a = edgelite.connect(str(tmp_path / "a.db"), sync_url=first.url)
    b = edgelite.connect(str(tmp_path / "b.db"), sync_url=second.url)
    assert isinstance(a, ReplicaConnection) and isinstance(b, ReplicaConnection)
    for i in range(20):
        # Written through one follower (forwarded to the leader), read locally at once.
        a.execute("INSERT INTO ryw VALUES (?, ?)", (i, f"v{i}"))
        a.commit()
        assert a.execute("SELECT v FROM ryw WHERE id = ?", (i,)).fetchone() == (f"v{i}",)
    b.sync()  # the other replica, on the other follower, after a sync
    assert b.execute("SELECT count(*) FROM ryw").fetchone() == (20,)
    b.execute("UPDATE ryw SET v = 'b' WHERE id = 0")
    b.commit()
    assert b.execute("SELECT v FROM ryw WHERE id = 0").fetchone() == ("b",)
    a.sync()
    assert a.execute("SELECT v FROM ryw WHERE id = 0").fetchone() == ("b",)
    a.close()
    b.close()


def test_push_whose_answer_is_lost_is_merged_once(tmp_path: Path, cluster: Cluster) -> None:
    target = followers(cluster)[0]
    execute(cluster.leader().url, "CREATE TABLE lost(seq INTEGER)")
    with FaultProxy("127.0.0.1", target.http_port) as proxy:
        conn = edgelite.connect(str(tmp_path / "r.db"), offline=True, read_timeout=1.0,
                                sync_url=f"http://127.0.0.1:{proxy.port}")
        assert isinstance(conn, ReplicaConnection)
        for seq in range(30):
            conn.execute("INSERT INTO lost VALUES (?)", (seq,))
            conn.commit()
        proxy.partition(Direction.DOWNSTREAM, Mode.DROP)  # the server answers; we hear nothing
        with pytest.raises(SyncUnavailableError):
            conn.sync()
        proxy.heal()
        proxy.reset()
        # The push committed although its answer never came.
        assert query(cluster.leader().url, "SELECT count(*) FROM lost") == [(30,)]
        result = conn.sync()  # the same rows, the same request id: ALREADY_APPLIED
        assert result.pending == 0
        conn.close()
    assert query(cluster.leader().url, "SELECT count(*), count(DISTINCT seq) FROM lost") == [
        (30, 30)]
