"""Embedded replicas: local read latency against baselines, and replication lag (not a
test).

    .venv/bin/python bench/replica.py [--queries 5000] [--rounds 5] [--writes 400]
                                      [--rate 100] [--cluster]

Reads: every case runs ``SELECT v FROM kv WHERE k = ?`` (1 000 rows, k cycling) and
fetches the row; rounds interleave the cases and each figure is the median over rounds
of wall µs per query:

* ``apsw (same file)``        — APSW on the online replica's own file (the floor);
* ``replica online``          — ``edgelite.connect(path, sync_url=...)``;
* ``replica offline``         — the same with ``offline=True`` (another file);
* ``replica, general path``   — the online replica through the session and Hrana
                                messages (a plain ``Cursor``: no read fast path);
* ``remote http`` / ``remote ws`` — ``edgelite.connect(url)`` to the server the
                                replica syncs from.

Lag: a writer commits single-row INSERTs at ``--rate`` per second through HTTP (to the
leader); an online replica with ``sync_interval=0.5`` (long polls) records when it
applied each index. Lag = replica applied − commit acknowledged to the writer (it can
be slightly negative: the long poll may return before the writer's answer arrives).
With ``--cluster`` the server is a 3-node cluster and the replica syncs from a follower.
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import apsw  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.processes import start_server  # noqa: E402

import edgelite  # noqa: E402
from edgelite.client.connection import Cursor  # noqa: E402
from edgelite.replica import ReplicaConnection  # noqa: E402

ROWS = 1000
QUERY = "SELECT v FROM kv WHERE k = ?"


def keys(count: int) -> list[int]:
    return [(i % ROWS) + 1 for i in range(count)]


def measure(cases: dict[str, Callable[[list[int]], None]], queries: int,
            rounds: int) -> dict[str, float]:
    for run in cases.values():
        run(keys(min(300, queries)))  # warm-up
    walls: dict[str, list[float]] = {name: [] for name in cases}
    batch = keys(queries)
    for number in range(rounds):
        for name, run in cases.items():
            started = time.perf_counter()
            run(batch)
            walls[name].append((time.perf_counter() - started) / len(batch) * 1e6)
        print(f"  reads: round {number + 1}/{rounds}", file=sys.stderr)
    return {name: statistics.median(values) for name, values in walls.items()}


def cursor_case(cursor: Any) -> Callable[[list[int]], None]:
    def run(batch: list[int]) -> None:
        for k in batch:
            cursor.execute(QUERY, (k,)).fetchall()
    return run


def read_cases(directory: Path, url: str, ws_url: str, queries: int) -> tuple[
        dict[str, Callable[[list[int]], None]], list[Any]]:
    online = edgelite.connect(str(directory / "online.db"), sync_url=url)
    offline = edgelite.connect(str(directory / "offline.db"), sync_url=url, offline=True)
    assert isinstance(online, ReplicaConnection) and isinstance(offline, ReplicaConnection)
    raw = apsw.Connection(str(directory / "online.db"), flags=apsw.SQLITE_OPEN_READONLY)
    http = edgelite.connect(url)
    ws = edgelite.connect(ws_url)
    remote_queries = max(200, queries // 10)  # network round trips: fewer of them

    def remote(cursor: Any) -> Callable[[list[int]], None]:
        def run(batch: list[int]) -> None:
            for k in batch[:remote_queries]:
                cursor.execute(QUERY, (k,)).fetchall()
        return run

    cases = {
        "apsw (same file)": cursor_case(raw.cursor()),
        "replica online": cursor_case(online.cursor()),
        "replica offline": cursor_case(offline.cursor()),
        "replica, general path": cursor_case(Cursor(online)),
        "remote http": remote(http.cursor()),
        "remote ws": remote(ws.cursor()),
    }
    return cases, [online, offline, http, ws, raw]


def remote_scale(results: dict[str, float], queries: int) -> dict[str, float]:
    """The remote cases ran ``remote_queries`` of ``queries``: per query, rescaled."""
    remote_queries = max(200, queries // 10)
    scaled = dict(results)
    for name in ("remote http", "remote ws"):
        scaled[name] = results[name] * queries / remote_queries
    return scaled


def lag(directory: Path, writer_url: str, replica_url: str, writes: int,
        rate: float) -> list[float]:
    """Commit-acknowledged → replica-applied, ms, one per write."""
    conn = edgelite.connect(str(directory / "lag.db"), sync_url=replica_url,
                            sync_interval=0.5)
    assert isinstance(conn, ReplicaConnection)
    replicator = conn._transport.replicator
    applied: list[tuple[int, float]] = []
    lock = threading.Lock()

    def on_applied(index: int) -> None:
        with lock:
            applied.append((index, time.perf_counter()))

    replicator.on_applied = on_applied
    writer = edgelite.connect(writer_url, autocommit=True)
    acks: list[tuple[int, float]] = []
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for i in range(writes):
        next_at += interval
        writer.execute("INSERT INTO lag_t(v) VALUES (?)", (i,))
        index = writer.replication_index
        assert index is not None
        acks.append((index, time.perf_counter()))
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    replicator.await_applied(acks[-1][0], 30)
    writer.close()
    conn.close()
    indexes = [index for index, _ in applied]
    lags = []
    for index, acked_at in acks:
        position = bisect.bisect_left(indexes, index)
        lags.append((applied[position][1] - acked_at) * 1000)
    return lags


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-replica-"))
    cluster = server = None
    if args.cluster:
        cluster = Cluster.start(directory / "cluster", 3)
        leader = cluster.leader()
        follower = next(m for m in cluster.members.values() if m is not leader)
        writer_url, url = leader.url, follower.url
        ws_url = "ws" + url[4:]
        where = "3-node cluster, replica on a follower"
    else:
        server = start_server(directory / "server")
        writer_url = url = server.url
        ws_url = server.ws_url
        where = "edgelite dev (one node)"
    try:
        setup = edgelite.connect(writer_url)
        setup.execute("CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)")
        setup.executemany("INSERT INTO kv VALUES (?, ?)",
                          [(k, f"value-{k}") for k in range(1, ROWS + 1)])
        setup.execute("CREATE TABLE lag_t(id INTEGER PRIMARY KEY, v INTEGER)")
        setup.commit()
        setup.close()
        cases, closing = read_cases(directory, url, ws_url, args.queries)
        reads = remote_scale(measure(cases, args.queries, args.rounds), args.queries)
        for conn in closing:
            conn.close()
        lags = lag(directory, writer_url, url, args.writes, args.rate)
    finally:
        if cluster is not None:
            cluster.close()
        if server is not None:
            server.stop()
    floor = reads["apsw (same file)"]
    print(f"\nreads ({where}; {args.queries} queries x {args.rounds} rounds, median µs)")
    for name, value in reads.items():
        print(f"  {name:<24} {value:9.1f} µs   {value / floor:6.2f}x apsw")
    print(f"  remote http / replica online: {reads['remote http'] / reads['replica online']:.0f}x")
    print(f"\nlag ({args.writes} writes at {args.rate:g}/s; commit ack -> replica applied)")
    print(f"  p50 {percentile(lags, 0.50):7.2f} ms   p99 {percentile(lags, 0.99):7.2f} ms   "
          f"max {max(lags):7.2f} ms   min {min(lags):7.2f} ms")


if __name__ == "__main__":
    main()
