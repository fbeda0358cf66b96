"""The raft.Storage contract, run on MemoryStorage (the reference) and RaftLogStore.

Example tests run on both implementations (the disk one reopened between writing and
reading); a Hypothesis state machine drives both with the same random operation
sequences and requires identical answers (values and error types) after every step.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edgelite.errors import StorageError
from edgelite.raft.errors import CompactedError, UnavailableError
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import ConfState, Entry, HardState, SnapshotMeta
from edgelite.storage.raftlog import RaftLogStore

from .conftest import FAST_DIR
from .helpers import check_payloads, entries, entry, open_store

CONF = ConfState(frozenset({"a", "b", "c"}))
Storage = Any  # MemoryStorage | RaftLogStore (identical write API)


class Harness:
    """One storage plus ``reopen`` (a no-op for memory, close + open for disk)."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.storage: Storage = MemoryStorage() if kind == "memory" else open_store(directory)

    def reopen(self) -> Storage:
        if self.kind == "disk":
            self.storage.close()
            self.storage = open_store(self.directory)
        return self.storage

    def close(self) -> None:
        if self.kind == "disk":
            self.storage.close()


@pytest.fixture(params=["memory", "disk"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(request.param, tmp_path / "log")
    yield h
    h.close()


def test_empty_storage(harness: Harness) -> None:
    s = harness.reopen()
    assert (s.first_index(), s.last_index(), s.term(0)) == (1, 0, 0)
    assert s.entries(1, 1, 100) == []
    assert s.snapshot_meta() is None
    assert s.initial_state() == (HardState(), ConfState())
    with pytest.raises(UnavailableError):
        s.term(1)
    with pytest.raises(CompactedError):
        s.entries(0, 1, 100)
    with pytest.raises(UnavailableError):
        s.entries(1, 2, 100)


def test_append_read_and_byte_limit(harness: Harness) -> None:
    harness.storage.append(entries(1, 20, 1, size=100))
    s = harness.reopen()
    assert s.entries(1, 21, 1 << 20) == entries(1, 20, 1, size=100)
    assert len(s.entries(1, 21, 0)) == 1  # always at least one entry
    assert len(s.entries(3, 21, 3 * 124)) == 3  # 100 bytes of data + 24 of overhead each
    assert len(s.entries(3, 21, 3 * 124 - 1)) == 2
    assert [s.term(i) for i in (0, 1, 20)] == [0, 1, 1]


def test_append_replaces_suffix_and_refuses_gaps(harness: Harness) -> None:
    harness.storage.append(entries(1, 10, 1))
    harness.storage.append(entries(6, 8, 2))
    s = harness.reopen()
    assert s.last_index() == 8
    assert s.entries(1, 9, 1 << 20) == entries(1, 5, 1) + entries(6, 8, 2)
    with pytest.raises(UnavailableError):
        s.append(entries(10, 11, 2))
    s.append([])
    assert harness.reopen().last_index() == 8


def test_snapshot_compaction_and_errors(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 30, 1))
    s.set_hard_state(HardState(1, "a", 25))
    with pytest.raises(ValueError):
        s.compact(10)  # no snapshot yet
    with pytest.raises(UnavailableError):
        s.create_snapshot(SnapshotMeta(31, 1, CONF))
    with pytest.raises(ValueError):
        s.create_snapshot(SnapshotMeta(20, 2, CONF))  # wrong term
    meta = SnapshotMeta(20, 1, CONF, 5, "snap-20")
    s.create_snapshot(meta)
    with pytest.raises(CompactedError):
        s.create_snapshot(SnapshotMeta(20, 1, CONF))  # not newer
    with pytest.raises(ValueError):
        s.compact(21)  # past the snapshot
    s.compact(15)
    s = harness.reopen()
    assert (s.first_index(), s.last_index(), s.term(15), s.snapshot_meta()) == (16, 30, 1, meta)
    assert s.initial_state() == (HardState(1, "a", 25), CONF)
    with pytest.raises(CompactedError):
        s.term(14)
    with pytest.raises(CompactedError):
        s.entries(15, 20, 1 << 20)
    s.append(entries(10, 31, 1))  # entries at or below the compaction point are skipped
    s = harness.reopen()
    assert s.entries(16, 32, 1 << 20) == entries(16, 31, 1)


def test_apply_snapshot_replaces_the_log(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 10, 1))
    s.set_hard_state(HardState(2, None, 4))
    meta = SnapshotMeta(50, 3, CONF, 100, "remote")
    s.apply_snapshot(meta)
    s = harness.reopen()
    assert (s.first_index(), s.last_index(), s.term(50)) == (51, 50, 3)
    assert s.initial_state() == (HardState(2, None, 50), CONF)
    s.append(entries(51, 55, 3))
    s = harness.reopen()
    assert s.entries(51, 56, 1 << 20) == entries(51, 55, 3)
    with pytest.raises(CompactedError):
        s.apply_snapshot(SnapshotMeta(40, 3, CONF))


# -- random operation sequences: both implementations must agree ---------------------


def _outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except (CompactedError, UnavailableError, ValueError) as exc:
        return type(exc)


class StorageComparison(RuleBasedStateMachine):
    """Drives MemoryStorage and RaftLogStore with the same valid Raft-like operations."""

    def __init__(self) -> None:
        super().__init__()
        # Semantics, not durability, are compared here: tmpfs keeps fsync cheap.
        self.directory = Path(tempfile.mkdtemp(prefix="raftlog-contract-", dir=FAST_DIR))
        self.memory = MemoryStorage()
        self.disk = open_store(self.directory / "log", cache_bytes_max=600)
        self.term = 1

    def teardown(self) -> None:
        self.disk.close()
        shutil.rmtree(self.directory)

    def both(self, method: str, *args: object) -> None:
        results = [_outcome(lambda s=s: getattr(s, method)(*args))
                   for s in (self.memory, self.disk)]
        assert results[0] == results[1], (method, args, results)

    @property
    def commit(self) -> int:
        return self.memory.hard_state.commit

    @rule(data=st.data(), count=st.integers(1, 12), bump=st.booleans())
    def append(self, data: st.DataObject, count: int, bump: bool) -> None:
        m = self.memory
        offset, last = m.first_index() - 1, m.last_index()
        low = max(1, offset - 2) if self.commit == offset else self.commit + 1
        first = data.draw(st.integers(low, last + 1), label="first")
        base = m.term(max(first - 1, offset))
        self.term = max(self.term, base) + int(bump)
        # (index, term) decides the data, as in Raft; some entries are large enough to
        # fill a small segment in a few records.
        batch = [entry(i, self.term, (i * 131 + self.term * 17) % 700 if i % 3 == 0 else None)
                 for i in range(first, first + count)]
        self.both("append", batch)

    @rule(advance=st.integers(0, 10), new_term=st.booleans(), vote=st.sampled_from([None, "b"]))
    def set_hard_state(self, advance: int, new_term: bool, vote: str | None) -> None:
        old = self.memory.hard_state
        term = max(old.term, self.term) + int(new_term)
        commit = min(self.memory.last_index(), old.commit + advance)
        state = HardState(term, vote if term != old.term or old.vote is None else old.vote,
                          max(commit, old.commit))
        self.both("set_hard_state", state)

    @rule()
    def sync(self) -> None:
        self.disk.sync()

    @rule()
    def reopen(self) -> None:
        self.disk.close()
        self.disk = open_store(self.directory / "log", cache_bytes_max=600)
        assert not self.disk.repairs

    @precondition(lambda self: self.commit >= self.memory.first_index())
    @rule(data=st.data())
    def create_snapshot(self, data: st.DataObject) -> None:
        m = self.memory
        newest = m.snapshot_meta()
        low = max(m.first_index() - 1, newest.index + 1 if newest else 1)
        if low > self.commit:
            return
        index = data.draw(st.integers(low, self.commit), label="snapshot index")
        self.both("create_snapshot", SnapshotMeta(index, m.term(index), CONF, index, f"s{index}"))

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        m = self.memory
        newest = m.snapshot_meta()
        high = min(newest.index if newest else 0, self.commit) + 1
        index = data.draw(st.integers(max(0, m.first_index() - 2), high), label="compact to")
        self.both("compact", index)

    @rule(ahead=st.integers(1, 8), bump=st.booleans(), rare=st.integers(0, 5))
    def apply_snapshot(self, ahead: int, bump: bool, rare: int) -> None:
        if rare:
            return  # replacing the whole log often would leave little log to test
        m = self.memory
        index = self.commit + ahead
        self.term = max(self.term, m.term(m.last_index())) + int(bump)
        meta = SnapshotMeta(index, self.term, CONF, 10, f"r{index}")
        self.both("apply_snapshot", meta)

    @invariant()
    def same_answers(self) -> None:
        m, d = self.memory, self.disk
        first, last = m.first_index(), m.last_index()
        assert (d.first_index(), d.last_index()) == (first, last)
        assert d.snapshot_meta() == m.snapshot_meta()
        assert d.initial_state() == m.initial_state()
        for index in range(first - 2, last + 2):
            assert _outcome(lambda i=index: d.term(i)) == _outcome(lambda i=index: m.term(i))
        for lo, hi, budget in ((first, last + 1, 1 << 30), (first, last + 1, 500),
                               (first - 1, last + 1, 100), (first, last + 2, 100),
                               ((first + last) // 2, last + 1, 0)):
            found = _outcome(lambda a=lo, b=hi, c=budget: d.entries(a, b, c))
            assert found == _outcome(lambda a=lo, b=hi, c=budget: m.entries(a, b, c))
            if isinstance(found, list):
                check_payloads(found)


TestStorageComparison = StorageComparison.TestCase
TestStorageComparison.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_close_is_idempotent_and_closed_store_refuses(tmp_path: Path) -> None:
    store = RaftLogStore.open(tmp_path / "log")
    store.append([Entry(1, 1)])
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.last_index()
