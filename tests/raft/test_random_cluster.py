"""Seeded random runs of the in-memory cluster, checking Raft's safety properties.

A light version of the deterministic simulator (``edgelite.raft.sim``), kept here so the
core's own suite exercises its asserts under message loss, delay, reordering,
duplication, partitions, crash-restarts that lose unpersisted state, snapshots,
membership changes, transfers and reads. Each run checks, as it goes:

- election safety: at most one leader per term (Figure 3);
- state machine safety: no two nodes apply different entries at one index;
- committed entries never change, and leaders of later terms hold them (Leader
  Completeness);

and after healing, that a leader emerges and a new proposal commits (liveness).
"""

from __future__ import annotations

import contextlib
import os
import random

import pytest

from edgelite.errors import ClusterError
from edgelite.raft import ConfChange, ConfChangeKind, Raft, Role
from edgelite.raft.testing import Cluster

SPARE_NODES = ("6", "7")


class Checker:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.leaders: dict[int, str] = {}
        self.applied: dict[int, bytes] = {}
        self.committed_terms: dict[int, int] = {}
        self.committed_at_term: dict[int, int] = {}

    def check(self, full: bool) -> None:
        nodes = self.cluster.nodes.values()
        for node in nodes:
            if node.raft.role is Role.LEADER:
                first = self.leaders.setdefault(node.raft.term, node.id)
                assert first == node.id, f"two leaders in term {node.raft.term}"
            for index, data in node.applied[-5:]:
                assert self.applied.setdefault(index, data) == data, f"applied differ at {index}"
        if full:
            self._check_committed()

    def _check_committed(self) -> None:
        top_term = max(node.raft.term for node in self.cluster.nodes.values())
        for node in self.cluster.nodes.values():
            log = node.raft.log
            for index in range(max(log.first_index(), log.committed - 20), log.committed + 1):
                term = log.term(index)
                assert self.committed_terms.setdefault(index, term) == term, (
                    f"committed entry {index} changed on {node.id}"
                )
                self.committed_at_term.setdefault(index, top_term)
        for node in self.cluster.nodes.values():
            if node.raft.role is not Role.LEADER:
                continue
            log = node.raft.log
            for index, term in self.committed_terms.items():
                if index >= log.first_index() and node.raft.term > self.committed_at_term[index]:
                    assert log.term_or_zero(index) == term, (
                        f"leader {node.id} of term {node.raft.term} lacks committed {index}"
                    )


def _deliver_some(c: Cluster, rnd: random.Random) -> None:
    messages, c.in_flight = c.in_flight, []
    rnd.shuffle(messages)
    for message in messages:
        roll = rnd.random()
        if roll < 0.1:
            continue  # lost
        if roll < 0.5:
            c.in_flight.append(message)  # delayed
            continue
        if (message.from_id, message.to_id) in c.blocked or message.to_id not in c.nodes:
            continue
        c.nodes[message.to_id].raft.step(message)
        if rnd.random() < 0.05:
            c.nodes[message.to_id].raft.step(message)  # duplicated


def _change_membership(c: Cluster, raft: Raft, rnd: random.Random, founders: list[str]) -> None:
    conf = raft.conf
    options: list[ConfChange] = []
    for node in [*founders, *SPARE_NODES]:
        if node in conf.voters and len(conf.voters) > 1:
            options.append(ConfChange(ConfChangeKind.REMOVE_VOTER, node))
        elif node in conf.learners:
            options.append(ConfChange(ConfChangeKind.PROMOTE_LEARNER, node))
            options.append(ConfChange(ConfChangeKind.REMOVE_LEARNER, node))
        elif node not in conf.members:
            options.append(ConfChange(ConfChangeKind.ADD_LEARNER, node))
            options.append(ConfChange(ConfChangeKind.ADD_VOTER, node))
    cc = rnd.choice(options)
    raft.propose_conf_change(cc)
    if cc.node_id not in c.nodes and cc.kind in (
        ConfChangeKind.ADD_LEARNER,
        ConfChangeKind.ADD_VOTER,
    ):
        c.add_node(cc.node_id)


def _random_step(c: Cluster, rnd: random.Random, step: int, founders: list[str]) -> None:
    node = c.nodes[rnd.choice(sorted(c.nodes))]
    roll = rnd.random()
    if roll < 0.35:
        node.raft.tick()
    elif roll < 0.55:
        _deliver_some(c, rnd)
    elif roll < 0.75:
        c.process_ready(node.id)
    elif roll < 0.85:
        node.raft.propose(f"p{step}".encode())
    elif roll < 0.86:
        c.restart(node.id)
    elif roll < 0.87:
        ids = sorted(c.nodes)
        rnd.shuffle(ids)
        cut = rnd.randrange(1, len(ids))
        c.partition(ids[:cut], ids[cut:]) if rnd.random() < 0.5 else c.heal()
    elif roll < 0.88:
        if node.applied_index > node.storage.first_index() and not node.raft.has_ready():
            node.take_snapshot()
    elif roll < 0.885:
        if node.raft.role is Role.LEADER:
            _change_membership(c, node.raft, rnd, founders)
    elif roll < 0.89:
        if node.raft.role is Role.LEADER:
            node.raft.transfer_leadership(rnd.choice(sorted(node.raft.conf.voters)))
    elif roll < 0.90:
        node.raft.read_index(f"r{step}".encode())
    else:
        node.raft.tick()


def _settle(c: Cluster, rounds: int) -> None:
    for _ in range(rounds):
        c.tick_all()
        c.stabilize()


def run(seed: int, steps: int) -> None:
    rnd = random.Random(seed)
    founders = ["1", "2", "3", "4", "5"][: rnd.choice([3, 5])]
    pre_vote = rnd.random() < 0.8
    check_quorum = rnd.random() < 0.8
    c = Cluster.founded(
        founders,
        lambda node: random.Random(f"{seed}-{node}"),
        max_message_bytes=rnd.choice([64, 1 << 20]),
        max_inflight_messages=rnd.choice([1, 4, 256]),
        pre_vote=pre_vote,
        check_quorum=check_quorum,
    )
    checker = Checker(c)
    for step in range(steps):
        # Refusals (not leader, transfer in progress, change pending) are expected.
        with contextlib.suppress(ClusterError):
            _random_step(c, rnd, step, founders)
        checker.check(full=step % 20 == 0)
    if not (pre_vote or check_quorum):
        return  # a removed or partitioned node may keep disrupting elections forever
    c.heal()
    for _attempt in range(3):  # leadership may still move once (a TimeoutNow in flight)
        _settle(c, 60)
        leader = c.leader()
        assert leader is not None, f"seed {seed}: no leader after healing"
        try:
            ticket = c.nodes[leader].raft.propose(b"final")
        except ClusterError:
            continue
        _settle(c, 20)
        log = c.nodes[leader].raft.log
        if log.committed >= ticket.index and log.term_or_zero(ticket.index) == ticket.term:
            break
    else:
        raise AssertionError(f"seed {seed}: no proposal committed after healing")
    checker.check(full=True)


@pytest.mark.parametrize("seed", range(40))
def test_random_cluster_run(seed: int) -> None:
    run(seed, steps=4000)


# Long runs: 100 seeds by default (about 20 s); more with e.g.
# EDGELITE_RAFT_LONG_SEEDS=1000 pytest -m slow tests/raft/test_random_cluster.py
LONG_SEEDS = int(os.environ.get("EDGELITE_RAFT_LONG_SEEDS", "100"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1000, 1000 + LONG_SEEDS))
def test_random_cluster_run_long(seed: int) -> None:
    run(seed, steps=20000)
