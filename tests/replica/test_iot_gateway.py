"""The seed's IoT gateway: a device keeps inserting readings into an offline replica
while its link to the cluster is cut and restored many times (fault proxy) and the
cluster's leader is killed; in the end every reading is on every node exactly once.

The CI run lasts about 20 s; the ``slow`` one 45 s (``EDGELITE_IOT_LONG_S`` for more).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import edgelite
from edgelite.replica import ReplicaConnection
from tests.replica.servers import wait_until
from tests.support.cluster import Cluster, Member
from tests.support.faultproxy import FaultProxy, Mode

SCHEMA = ("CREATE TABLE readings (device_id TEXT, seq INTEGER, temperature REAL, "
          "humidity REAL, ts DATETIME DEFAULT CURRENT_TIMESTAMP)")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster.start(tmp_path / "cluster", 3)
    yield started
    started.close()


class Device(threading.Thread):
    """Inserts one reading every few milliseconds, as the seed's loop does."""

    def __init__(self, path: Path, sync_url: str, interval_s: float) -> None:
        super().__init__(name="device")
        self.path, self.sync_url, self.interval_s = path, sync_url, interval_s
        self.stop = threading.Event()
        self.count = 0
        self.error: BaseException | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            conn = edgelite.connect(str(self.path), sync_url=self.sync_url, offline=True,
                                    sync_interval=0.1)
            self.ready.set()
            cur = conn.cursor()
            rng = random.Random(1)
            while not self.stop.is_set():
                cur.execute("INSERT INTO readings (device_id, seq, temperature, humidity) "
                            "VALUES (?, ?, ?, ?)",
                            ("gateway-01", self.count, rng.uniform(20, 30),
                             rng.uniform(30, 70)))
                conn.commit()
                self.count += 1
                time.sleep(self.interval_s)
            conn.close()
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.ready.set()


def _scenario(tmp_path: Path, cluster: Cluster, duration_s: float, cuts: int) -> None:
    leader = cluster.leader()
    cluster.execute(leader, SCHEMA)
    link_to = next(m for m in cluster.members.values() if m is not leader)
    proxy = FaultProxy("127.0.0.1", link_to.http_port).start()
    path = tmp_path / "gateway.db"
    device = Device(path, f"http://127.0.0.1:{proxy.port}", interval_s=0.004)
    try:
        device.start()
        device.ready.wait(30)
        rng = random.Random(2026)
        started = time.monotonic()
        killed: Member | None = None
        backlogs = []
        for cut in range(cuts):
            time.sleep(rng.uniform(0.2, duration_s / cuts))
            proxy.partition(mode=rng.choice([Mode.DROP, Mode.HOLD]))
            if cut == cuts // 2:
                killed = cluster.leader()
                cluster.kill(killed.node_id)  # the leader dies while the link is down
            time.sleep(rng.uniform(0.1, 0.6))
            on_cluster = _on_cluster(cluster)
            if on_cluster is not None:
                backlogs.append(device.count - on_cluster)
            if rng.random() < 0.5:
                proxy.reset()  # connections die rather than resume
            proxy.heal()
            if killed is not None and cut == cuts // 2 + 2:
                cluster.launch(killed)  # it comes back and catches up
        while time.monotonic() - started < duration_s:
            time.sleep(0.1)
        device.stop.set()
        device.join(60)
        assert device.error is None, device.error
        assert device.count > 100
        # Readings piled up on the gateway while it was cut off.
        assert backlogs and max(backlogs) > 10, backlogs
    finally:
        device.stop.set()
        proxy.heal()
    # The gateway comes back for good: everything it wrote reaches the cluster.
    conn = edgelite.connect(str(path), sync_url=f"http://127.0.0.1:{proxy.port}",
                            offline=True)
    assert isinstance(conn, ReplicaConnection)
    wait_until(lambda: _synced(conn), timeout_s=60, what="the outbox drained")
    local = conn.execute("SELECT count(*), count(DISTINCT seq) FROM readings").fetchone()
    assert local == (device.count, device.count)
    conn.close()
    proxy.stop()
    expected = [[device.count, device.count, 0, device.count - 1]]
    census = "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM readings"
    for member in cluster.members.values():
        cluster.wait_serving(member)
        wait_until(lambda m=member: cluster.rows(m, census, consistency="eventual")
                   == expected, timeout_s=60,
                   what=f"{member.node_id} holds every reading exactly once: {expected}")


def _on_cluster(cluster: Cluster) -> int | None:
    """Readings the cluster has (strong read on whoever leads), if it answers."""
    try:
        return int(cluster.rows(cluster.leader(timeout_s=5), "SELECT count(*) FROM readings")
                   [0][0])
    except (AssertionError, TimeoutError, OSError, httpx.HTTPError):
        return None


def _synced(conn: ReplicaConnection) -> bool:
    try:
        return conn.sync().pending == 0
    except edgelite.OperationalError:
        return False


def test_iot_gateway_survives_cuts_and_a_leader_kill(tmp_path: Path, cluster: Cluster) -> None:
    _scenario(tmp_path, cluster, duration_s=15.0, cuts=8)


# The long run: 45 s by default; a soak with e.g. EDGELITE_IOT_LONG_S=1800.
LONG_S = float(os.environ.get("EDGELITE_IOT_LONG_S", "45"))


@pytest.mark.slow
def test_iot_gateway_long(tmp_path: Path, cluster: Cluster) -> None:
    _scenario(tmp_path, cluster, duration_s=LONG_S, cuts=max(8, int(LONG_S / 2)))
