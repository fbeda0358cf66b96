"""Each invariant of the simulator's oracle fires on a violating input and stays quiet
on the legal look-alike (the look-alikes are cases the simulator met for real)."""

from __future__ import annotations

import pytest

from edgelite.raft.sim.oracle import InvariantViolation, Oracle
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import ConfState, Entry, EntryKind, HardState, SnapshotMeta

CONF = ConfState(frozenset({"n1", "n2", "n3"}))


def log_of(*terms: int, data: bytes = b"x") -> MemoryStorage:
    """A storage whose entry i+1 has term ``terms[i]``."""
    storage = MemoryStorage()
    storage.append([Entry(t, i + 1, EntryKind.NORMAL, data) for i, t in enumerate(terms)])
    return storage


def commit(oracle: Oracle, node: str, storage: MemoryStorage, upto: int, term: int) -> None:
    storage.set_hard_state(HardState(term, None, upto))
    oracle.on_commit(node, storage, 0, upto)


def test_two_leaders_in_one_term() -> None:
    oracle = Oracle()
    oracle.on_leader("n1", 3)
    oracle.on_leader("n1", 3)  # the same leader reported twice is fine
    oracle.on_leader("n2", 4)
    with pytest.raises(InvariantViolation, match="election safety"):
        oracle.on_leader("n2", 3)


@pytest.mark.parametrize(
    ("before", "after", "phrase"),
    [
        (HardState(5, "n1", 3), HardState(4, None, 3), "term went back"),
        (HardState(5, "n1", 3), HardState(5, "n2", 3), "vote in term 5 changed"),
        (HardState(5, "n1", 3), HardState(5, None, 3), "vote in term 5 changed"),
        (HardState(5, "n1", 3), HardState(5, "n1", 2), "commit went back"),
    ],
)
def test_durable_hard_state_rules(before: HardState, after: HardState, phrase: str) -> None:
    with pytest.raises(InvariantViolation, match=phrase):
        Oracle().on_hard_state("n1", before, after)


def test_durable_hard_state_legal_moves() -> None:
    oracle = Oracle()
    oracle.on_hard_state("n1", HardState(5, None, 3), HardState(5, "n2", 3))
    oracle.on_hard_state("n1", HardState(5, "n2", 3), HardState(6, None, 4))


def test_log_matching_same_index_and_term_different_data() -> None:
    oracle = Oracle()
    a, b = log_of(1, 2, data=b"a"), log_of(1, 2, data=b"b")
    oracle.on_appended("n1", a, a.entries(1, 3, 1 << 20))
    with pytest.raises(InvariantViolation, match="log matching"):
        oracle.on_appended("n2", b, b.entries(2, 3, 1 << 20))


def test_log_matching_same_entry_different_predecessor() -> None:
    oracle = Oracle()
    a, b = log_of(1, 3), log_of(2, 3)
    oracle.on_appended("n1", a, a.entries(1, 3, 1 << 20))
    with pytest.raises(InvariantViolation, match="after term 2"):
        oracle.on_appended("n2", b, b.entries(1, 3, 1 << 20))


def test_two_different_entries_committed_at_one_index() -> None:
    oracle = Oracle()
    commit(oracle, "n1", log_of(1, 2), 2, 2)
    with pytest.raises(InvariantViolation, match="state machine safety"):
        commit(oracle, "n2", log_of(1, 3), 2, 3)


def test_committed_entry_dropped_without_snapshot() -> None:
    oracle = Oracle()
    commit(oracle, "n1", log_of(1, 2, 2), 3, 2)
    oracle.on_entries_replaced("n2", [(3, 1)], covered_to=0)  # not the committed one
    oracle.on_entries_replaced("n2", [(2, 2)], covered_to=2)  # covered by a snapshot
    with pytest.raises(InvariantViolation, match="committed entry lost"):
        oracle.on_entries_replaced("n2", [(3, 2)], covered_to=2)


def test_leader_completeness_is_term_aware() -> None:
    oracle = Oracle()
    commit(oracle, "n1", log_of(1, 3), 2, 3)  # 3/2 committed, reported in term 3
    lagging = log_of(1)
    lagging.set_hard_state(HardState(2, "n2", 1))
    oracle.check_leader_complete("n2", lagging)  # a late leader of term 2: legal
    lagging.set_hard_state(HardState(4, "n2", 1))
    with pytest.raises(InvariantViolation, match="leader completeness"):
        oracle.check_leader_complete("n2", lagging)


def test_leader_commit_rule_and_majority() -> None:
    oracle = Oracle()
    storages = {"n1": log_of(1, 2), "n2": log_of(1, 2), "n3": log_of(1)}
    voters = (CONF.voters, CONF.voters)
    oracle.check_leader_commit("n1", 2, 2, 2, voters, storages)
    with pytest.raises(InvariantViolation, match="Figure 8"):
        oracle.check_leader_commit("n1", 2, 2, 3, voters, storages)
    four = frozenset({"n1", "n2", "n3", "n4"})
    # 2 of 4 is no majority, but it is one of the configuration before the change.
    oracle.check_leader_commit("n1", 2, 2, 2, (four, CONF.voters), storages)
    with pytest.raises(InvariantViolation, match="durable only on"):
        oracle.check_leader_commit("n1", 2, 2, 2, (four, four), storages)


def test_applied_entries_and_states_must_agree() -> None:
    oracle = Oracle()
    oracle.on_apply("n1", Entry(2, 5, EntryKind.NORMAL, b"a"))
    oracle.on_apply("n2", Entry(2, 5, EntryKind.NORMAL, b"a"))
    with pytest.raises(InvariantViolation, match="state machine safety"):
        oracle.on_apply("n3", Entry(3, 5, EntryKind.NORMAL, b"b"))
    oracle.on_fingerprint("n1", 5, "s")
    with pytest.raises(InvariantViolation, match="state at index 5"):
        oracle.on_fingerprint("n2", 5, "t")


def test_proposal_lands_where_its_ticket_says() -> None:
    oracle = Oracle(tickets={"r1": (7, 2)})
    oracle.on_request_applied("n1", "r1", 7, 2)
    with pytest.raises(InvariantViolation, match="ticket promised"):
        oracle.on_request_applied("n1", "r1", 8, 2)


def test_installed_snapshot_counts_as_committed() -> None:
    oracle = Oracle()
    oracle.on_snapshot_installed("n1", SnapshotMeta(4, 2, CONF, 10, "s"), node_term=3)
    assert oracle.committed[4] == 2
    with pytest.raises(InvariantViolation, match="state machine safety"):
        commit(oracle, "n2", log_of(1, 1, 1, 3), 4, 3)
