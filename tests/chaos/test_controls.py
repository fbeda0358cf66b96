"""Controls for the chaos checkers, and the scripted stale-read cases (F2, F3).

A checker that never fails proves nothing, so the first tests feed each checker a
history with a known anomaly and expect it to object. The live tests script the
classic stale-read traps on a real routed cluster: a minority member (an isolated
follower, a deposed leader) must refuse or block a ``strong`` read rather than answer
from its old state, while its ``eventual`` read does show the old value, and the
register checker flags that eventual read as a linearizability violation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from edgelite.raft.linearizability import Operation, check
from tests.chaos.bank import BankWorkload
from tests.chaos.client import Client, Outcome, execute
from tests.chaos.context import RunContext
from tests.chaos.harness import ChaosCluster
from tests.chaos.router import PeerRouter
from tests.chaos.set_workload import _merge
from tests.support.cluster import Member

WRITE = "INSERT INTO reg(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v"
READ = "SELECT v FROM reg WHERE k = ?"
CREATE = "CREATE TABLE IF NOT EXISTS reg(k TEXT PRIMARY KEY, v INTEGER)"


def test_bank_check_flags_a_wrong_total_and_a_negative_balance() -> None:
    run = RunContext(None, 0)  # type: ignore[arg-type]  # verify() needs no cluster
    bank = BankWorkload(accounts=3, balance=10)
    bank.verify(run, [[0, 10], [1, 10], [2, 10]], "a good read")
    assert run.violations == []
    bank.verify(run, [[0, 10], [1, 5], [2, 10]], "a read missing half a transfer")
    bank.verify(run, [[0, -5], [1, 25], [2, 10]], "an overdraft")
    bank.verify(run, [[0, 15], [1, 15]], "a read missing an account")
    assert len(run.violations) == 3, run.violations


def test_set_outcome_of_a_retried_insert() -> None:
    assert _merge(None, Outcome.FAIL) is Outcome.FAIL
    assert _merge(Outcome.UNKNOWN, Outcome.OK) is Outcome.OK
    # A retry refused for sure says nothing about the first attempt.
    assert _merge(Outcome.UNKNOWN, Outcome.FAIL) is Outcome.UNKNOWN


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosCluster]:
    """One cluster for the scripted cases (each heals what it broke)."""
    router = PeerRouter()
    cluster = ChaosCluster.launch_routed(tmp_path_factory.mktemp("controls"), 3, router)
    try:
        yield cluster
    finally:
        cluster.close()
        router.stop()


def _write(client: Client, member: Member, key: str, value: int) -> Operation:
    answer = client.pipeline(member, [execute(CREATE), execute(WRITE, key, value)])
    assert answer.outcome is Outcome.OK, answer.detail
    return Operation.write("w", key, value, answer.started, answer.finished)


def _read(client: Client, member: Member, key: str,
          consistency: str) -> tuple[Outcome, object, float, float]:
    answer = client.pipeline(member, [execute(READ, key)], consistency=consistency)
    rows = answer.rows() if answer.outcome is Outcome.OK else []
    value = rows[0][0] if rows else None
    return answer.outcome, value, answer.started, answer.finished


def _wait_for_new_leader(cluster: ChaosCluster, old: str, among: list[Member]) -> Member:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for member in among:
            status = cluster.status(member.node_id)
            if status and status.get("leader_id") not in (None, old):
                return cluster.members[status["leader_id"]]
        time.sleep(0.1)
    raise AssertionError(f"no new leader among {[m.node_id for m in among]}")


def test_isolated_follower_refuses_strong_reads_and_its_eventual_read_is_flagged(
        routed: ChaosCluster) -> None:
    client = Client()
    leader = routed.leader()
    follower = next(m for m in routed.live() if m is not leader)
    history = [_write(client, leader, "a", 1)]
    assert _read(client, follower, "a", "strong")[1] == 1  # it has caught up
    routed.router.isolate(follower.node_id, list(routed.members))
    try:
        history.append(_write(client, leader, "a", 2))  # the majority goes on without it
        outcome, value, started, finished = _read(client, follower, "a", "strong")
        assert outcome is not Outcome.OK or value == 2, f"stale strong read: {value} (F2)"
        outcome, value, started, finished = _read(client, follower, "a", "eventual")
        assert (outcome, value) == (Outcome.OK, 1)  # eventual may be stale, by contract
        history.append(Operation.read("r", "a", value, started, finished))
        assert check(history).ok is False  # ... and the checker sees that it is
    finally:
        routed.router.heal()
        client.close()


def test_deposed_leader_never_serves_a_stale_strong_read(routed: ChaosCluster) -> None:
    client = Client()
    old = routed.leader()
    others = [m for m in routed.live() if m is not old]
    history = [_write(client, old, "b", 1)]
    routed.router.isolate(old.node_id, list(routed.members))
    try:
        new = _wait_for_new_leader(routed, old.node_id, others)
        history.append(_write(client, new, "b", 2))
        # F3: right after the election, a strong read anywhere sees the new write.
        outcome, value, started, finished = _read(client, others[0], "b", "strong")
        assert (outcome, value) == (Outcome.OK, 2)
        history.append(Operation.read("r", "b", value, started, finished))
        # F2: the old leader may still believe it leads; it must not answer from its
        # state.
        for _ in range(2):
            outcome, value, started, finished = _read(client, old, "b", "strong")
            assert outcome is not Outcome.OK or value == 2, f"stale read from {old.node_id}"
            if outcome is Outcome.OK:
                history.append(Operation.read("r", "b", value, started, finished))
        assert check(history).ok is True
    finally:
        routed.router.heal()
        client.close()
