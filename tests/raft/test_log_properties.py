"""Property tests of the log layer (MemoryStorage, RaftLog) against list models."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelite.raft import ConfState, Entry, HardState, MemoryStorage, SnapshotMeta
from edgelite.raft.errors import CompactedError, UnavailableError
from edgelite.raft.log import RaftLog
from edgelite.raft.types import entry_size_bytes


def raft_log_terms(max_size: int = 12) -> st.SearchStrategy[list[int]]:
    """Terms of a plausible Raft log: non-decreasing, starting at 1."""
    return st.lists(st.integers(0, 2), max_size=max_size).map(
        lambda steps: [1 + sum(steps[: k + 1]) for k in range(len(steps))]
    )


def make_entries(terms: list[int], start: int = 1) -> list[Entry]:
    return [Entry(term, start + k, data=bytes([k % 256]) * (k % 5)) for k, term in enumerate(terms)]


@given(st.lists(st.tuples(st.integers(0, 15), raft_log_terms(6)), max_size=12))
@settings(deadline=None)
def test_memory_storage_append_matches_a_list(batches: list[tuple[int, list[int]]]) -> None:
    """``append`` replaces the suffix from its first index, like list slicing."""
    storage = MemoryStorage()
    model: list[int] = []
    for cut, terms in batches:
        start = min(cut, len(model)) + 1
        storage.append(make_entries(terms, start))
        if terms:
            model = model[: start - 1] + terms
        assert storage.last_index() == len(model)
        assert [storage.term(i) for i in range(1, len(model) + 1)] == model


@given(raft_log_terms(), st.integers(1, 12), st.integers(1, 12), st.integers(1, 200))
def test_entries_respect_the_byte_bound_but_return_at_least_one(
    terms: list[int], lo: int, span: int, bytes_max: int
) -> None:
    storage = MemoryStorage()
    storage.append(make_entries(terms))
    hi = lo + span
    if lo > len(terms) or hi > len(terms) + 1:
        return
    got = storage.entries(lo, hi, bytes_max)
    assert got == make_entries(terms)[lo - 1 : lo - 1 + len(got)]
    assert len(got) >= 1
    assert len(got) == 1 or sum(entry_size_bytes(e) for e in got) <= bytes_max


@given(raft_log_terms(), st.integers(0, 12))
def test_compaction_keeps_the_term_of_the_compaction_point(terms: list[int], at: int) -> None:
    storage = MemoryStorage()
    storage.append(make_entries(terms))
    if not 1 <= at <= len(terms):
        return
    storage.set_hard_state(HardState(terms[-1], None, len(terms)))
    storage.create_snapshot(SnapshotMeta(at, terms[at - 1], ConfState(frozenset({"1"}))))
    storage.compact(at)
    assert storage.first_index() == at + 1
    assert storage.term(at) == terms[at - 1]
    for index in range(at + 1, len(terms) + 1):
        assert storage.term(index) == terms[index - 1]
    with pytest.raises(CompactedError):
        storage.term(at - 1)
    with pytest.raises(CompactedError):
        storage.entries(at, at + 1, 1 << 20)
    with pytest.raises(UnavailableError):
        storage.term(len(terms) + 1)


def twin_append(ours: list[int], leader: list[int], prev: int, count: int) -> list[int] | None:
    """Figure 2's receiver rules on plain lists; None when the consistency check fails."""
    if prev > len(ours) or (prev > 0 and ours[prev - 1] != leader[prev - 1]):
        return None
    result = list(ours)
    for index in range(prev + 1, prev + count + 1):
        if index <= len(result) and result[index - 1] == leader[index - 1]:
            continue
        result = result[: index - 1] + leader[index - 1 : prev + count]
        break
    return result


@given(raft_log_terms(), raft_log_terms(), raft_log_terms(), st.integers(0, 30), st.integers(0, 8))
@settings(deadline=None)
def test_maybe_append_follows_the_receiver_rules(
    shared: list[int], ours_tail: list[int], leader_tail: list[int], prev: int, count: int
) -> None:
    """Two logs sharing a prefix diverge; appending a slice of the leader's log (never
    touching the shared, committed prefix) matches the list twin."""
    base = shared[-1] if shared else 1
    ours = shared + [base + t for t in ours_tail]
    leader = shared + [base + 10 + t for t in leader_tail]
    prev = min(prev, len(leader))
    count = min(count, len(leader) - prev)
    storage = MemoryStorage()
    storage.append(make_entries(ours))
    log = RaftLog(storage)
    log.committed = len(shared)
    expected = twin_append(ours, leader, prev, count)
    if prev < log.committed:
        return  # the follower short-circuits those (answers with its commit index)
    entries = make_entries(leader)[prev : prev + count]
    prev_term = leader[prev - 1] if prev else 0
    last_new = log.maybe_append(prev, prev_term, 0, entries)
    got = [log.term(i) for i in range(1, log.last_index() + 1)]
    if expected is None:
        assert last_new is None and got == ours
    else:
        assert last_new == prev + count and got == expected
    log.check()
