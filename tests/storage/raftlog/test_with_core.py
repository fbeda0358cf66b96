"""RaftLogStore under the real Raft core: the reference harness of ``edgelite.raft``
(``raft.testing``) with every node's log on disk, snapshots, compaction, a snapshot
install, and restarts that reopen the logs from their files."""

from __future__ import annotations

import random
from pathlib import Path

from edgelite.raft.storage import bootstrap_entries
from edgelite.raft.testing import Cluster
from edgelite.raft.types import ConfState
from edgelite.storage.raftlog import RaftLogStore

NODES = ("a", "b", "c")


def open_log(root: Path, node: str) -> RaftLogStore:
    return RaftLogStore.open(root / node, segment_bytes_max=8192, cache_bytes_max=4096)


def reopen(cluster: Cluster, root: Path, node: str) -> None:
    """Crash ``node`` (its log survives only through its files) and restart it."""
    cluster.nodes[node].storage.close()
    cluster.nodes[node].storage = open_log(root, node)  # type: ignore[assignment]
    cluster.restart(node)


def propose(cluster: Cluster, leader: str, count: int, tag: str) -> None:
    for number in range(count):
        cluster.nodes[leader].raft.propose(f"{tag}-{number}".encode() * 20)
        cluster.stabilize()


def test_a_cluster_on_disk_logs_survives_snapshots_installs_and_restarts(
        tmp_path: Path) -> None:
    cluster = Cluster(lambda node: random.Random(f"core-{node}"), max_message_bytes=2048)
    conf = ConfState(frozenset(NODES))
    for node in NODES:
        store = open_log(tmp_path, node)
        entries, hard_state = bootstrap_entries(conf)
        store.append(entries)
        store.set_hard_state(hard_state)
        store.sync()
        cluster.add_node(node, store)  # type: ignore[arg-type]
    for node in NODES:
        cluster.process_ready(node)
    cluster.elect("a")
    propose(cluster, "a", 40, "first")

    cluster.isolate("c")
    propose(cluster, "a", 60, "while-c-away")
    cluster.nodes["a"].take_snapshot()  # create_snapshot + compact on disk
    cluster.nodes["b"].take_snapshot()
    assert cluster.nodes["a"].storage.first_index() > cluster.nodes["c"].storage.last_index()
    cluster.heal()
    propose(cluster, "a", 5, "after-heal")  # c can only catch up through the snapshot
    assert cluster.nodes["c"].storage.snapshot_meta() is not None

    for node in NODES:
        reopen(cluster, tmp_path, node)
    cluster.elect("b")
    propose(cluster, "b", 20, "new-leader")
    applied = {node: cluster.nodes[node].applied for node in NODES}
    assert applied["a"] == applied["b"] == applied["c"]
    assert len(applied["a"]) == 125
    assert len({cluster.nodes[node].storage.last_index() for node in NODES}) == 1
    for node in NODES:
        cluster.nodes[node].storage.close()  # type: ignore[attr-defined]
