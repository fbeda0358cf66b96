"""Entries committed per second by the pure Raft core in a 3-node in-memory cluster.

Not a test: run ``python bench/raft_throughput.py [--entries N] [--payload-bytes B]``.
Everything runs in one thread: the three cores, the Ready handling of the reference
harness (``edgelite.raft.testing``: in-memory storage, a list as state machine) and a
FIFO "network". It therefore measures the core's own cost per committed entry, the
ceiling the cluster runtime can reach before any disk or socket.

Modes:
- ``one-at-a-time``: propose one entry, run the cluster until it is applied everywhere,
  repeat (one full round of Readies and messages per entry);
- ``pipelined``: propose entries one by one without waiting (each propose sends its own
  AppendEntries), settle every ``window`` entries;
- ``batched-N``: ``propose_batch`` of N entries per round (one AppendEntries per round).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

from edgelite.raft.testing import Cluster


def new_cluster() -> Cluster:
    cluster = Cluster.founded(
        ["1", "2", "3"], lambda node: random.Random(f"bench-{node}"), max_inflight_messages=512
    )
    cluster.elect("1")
    return cluster


def run_one_at_a_time(cluster: Cluster, entries: int, payload: bytes) -> None:
    leader = cluster.nodes["1"].raft
    for _ in range(entries):
        leader.propose(payload)
        cluster.stabilize()


def run_pipelined(cluster: Cluster, entries: int, payload: bytes, window: int = 64) -> None:
    leader = cluster.nodes["1"].raft
    for start in range(0, entries, window):
        for _ in range(min(window, entries - start)):
            leader.propose(payload)
        cluster.stabilize()


def run_batched(cluster: Cluster, entries: int, payload: bytes, batch: int) -> None:
    leader = cluster.nodes["1"].raft
    for start in range(0, entries, batch):
        leader.propose_batch([payload] * min(batch, entries - start))
        cluster.stabilize()


def measure(name: str, run: Callable[[Cluster], None], entries: int) -> tuple[str, float]:
    cluster = new_cluster()
    first = cluster.nodes["1"].applied_index
    started = time.perf_counter()
    run(cluster)
    elapsed = time.perf_counter() - started
    for node in cluster.nodes.values():
        assert node.applied_index == first + entries, f"{name}: node {node.id} lagging"
    return name, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--payload-bytes", type=int, default=100)
    args = parser.parse_args()
    payload = b"x" * args.payload_bytes
    n = args.entries
    runs: list[tuple[str, Callable[[Cluster], None], int]] = [
        ("one-at-a-time", lambda c: run_one_at_a_time(c, n // 10, payload), n // 10),
        ("pipelined", lambda c: run_pipelined(c, n, payload), n),
    ]
    for batch in (10, 100, 1000):
        runs.append((f"batched-{batch}", lambda c, b=batch: run_batched(c, n, payload, b), n))
    print(f"3-node in-memory cluster, payload {args.payload_bytes} B, Python "
          f"{sys.version.split()[0]}")
    print(f"{'mode':<16}{'entries':>10}{'seconds':>10}{'entries/s':>12}")
    for name, run, entries in runs:
        name, elapsed = measure(name, run, entries)
        print(f"{name:<16}{entries:>10}{elapsed:>10.3f}{entries / elapsed:>12,.0f}")


if __name__ == "__main__":
    main()
