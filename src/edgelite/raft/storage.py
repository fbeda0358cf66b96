"""The stable-storage seam: what the core reads, and an in-memory implementation.

The core only *reads* stable storage (through :class:`Storage`); the application
*writes* it while handling a ``Ready`` (append entries, set the hard state, install
snapshots) and when it compacts the log behind a snapshot of its own.

Log shape: storage holds a compaction point ``(first_index - 1, its term)`` -- the
snapshot's index and term, or ``(0, 0)`` -- followed by the contiguous entries
``first_index .. last_index``. ``last_index == first_index - 1`` means "no entries".
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

from edgelite.raft.errors import CompactedError, UnavailableError
from edgelite.raft.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    SnapshotMeta,
    encode_conf_change,
    entry_size_bytes,
)

__all__ = ["MemoryStorage", "Storage", "bootstrap_entries", "limit_entries_bytes"]


class Storage(Protocol):
    """Read access to a node's stable Raft state.

    - ``initial_state``: the persisted HardState, and the configuration in force before
      the first entry of the log: the newest snapshot's ConfState, or, without a
      snapshot, the configuration at index 0 (empty for a bootstrapped log). The core
      rebuilds the configuration at its applied index by replaying the conf-change
      entries after the snapshot, so the application never persists configurations.
    - ``entries(lo, hi, bytes_max)``: entries ``[lo, hi)``, stopping early once their
      total size (``entry_size_bytes``) would exceed ``bytes_max`` but always returning
      at least one entry when ``lo < hi``. Raises CompactedError if ``lo < first_index``,
      UnavailableError if ``hi > last_index + 1``.
    - ``term(index)``: the term of the entry at ``index``; for ``first_index - 1`` the
      snapshot's term (0 for index 0). CompactedError below that, UnavailableError
      above ``last_index``.
    - ``snapshot_meta``: the newest snapshot, or None if there is none.
    """

    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, bytes_max: int) -> list[Entry]: ...

    def term(self, index: int) -> int: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot_meta(self) -> SnapshotMeta | None: ...


def limit_entries_bytes(entries: Sequence[Entry], bytes_max: int) -> list[Entry]:
    """The longest prefix of ``entries`` within ``bytes_max`` (but at least one entry)."""
    total = 0
    for position, entry in enumerate(entries):
        total += entry_size_bytes(entry)
        if total > bytes_max and position > 0:
            return list(entries[:position])
    return list(entries)


def bootstrap_entries(conf_state: ConfState) -> tuple[list[Entry], HardState]:
    """The log and hard state every founding member of a new cluster starts with.

    One committed ADD_VOTER / ADD_LEARNER entry per member, at term 1, in sorted order.
    Because the initial configuration lives in the log, a node that joins later learns it
    by replicating the log like everything else. All founders must use the same
    ``conf_state`` (log matching relies on identical bootstrap entries).
    """
    if not conf_state.voters:
        raise ValueError("a cluster needs at least one voter to bootstrap")
    changes = [ConfChange(ConfChangeKind.ADD_VOTER, node) for node in sorted(conf_state.voters)]
    changes += [
        ConfChange(ConfChangeKind.ADD_LEARNER, node) for node in sorted(conf_state.learners)
    ]
    entries = [
        Entry(1, index, EntryKind.CONF_CHANGE, encode_conf_change(cc))
        for index, cc in enumerate(changes, start=1)
    ]
    return entries, HardState(term=1, vote=None, commit=len(entries))


class MemoryStorage:
    """In-memory :class:`Storage` for tests, the simulator and benchmarks.

    Invariants: ``_entries[k].index == _offset_index + 1 + k``;
    ``_snapshot.index >= _offset_index`` when a snapshot exists (compaction never goes
    past the newest snapshot); ``hard_state.commit <= last_index()``.
    """

    def __init__(self, conf_state: ConfState | None = None) -> None:
        self._hard_state = HardState()
        self._conf_state = conf_state if conf_state is not None else ConfState()
        self._offset_index = 0
        self._offset_term = 0
        self._entries: list[Entry] = []
        self._snapshot: SnapshotMeta | None = None

    @classmethod
    def bootstrapped(cls, conf_state: ConfState) -> MemoryStorage:
        """Storage of a founding member (see :func:`bootstrap_entries`)."""
        storage = cls()
        entries, hard_state = bootstrap_entries(conf_state)
        storage.append(entries)
        storage.set_hard_state(hard_state)
        return storage

    # -- Storage protocol ---------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        if self._snapshot is not None:
            return self._hard_state, self._snapshot.conf_state
        return self._hard_state, self._conf_state

    def entries(self, lo: int, hi: int, bytes_max: int) -> list[Entry]:
        if lo <= self._offset_index:
            raise CompactedError(f"entries from {lo}: compacted up to {self._offset_index}")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"entries up to {hi - 1}: last index is {self.last_index()}")
        if lo >= hi:
            return []
        start = lo - self._offset_index - 1
        return limit_entries_bytes(self._entries[start : hi - self._offset_index - 1], bytes_max)

    def term(self, index: int) -> int:
        if index < self._offset_index:
            raise CompactedError(f"term of {index}: compacted up to {self._offset_index}")
        if index == self._offset_index:
            return self._offset_term
        if index > self.last_index():
            raise UnavailableError(f"term of {index}: last index is {self.last_index()}")
        return self._entries[index - self._offset_index - 1].term

    def first_index(self) -> int:
        return self._offset_index + 1

    def last_index(self) -> int:
        return self._offset_index + len(self._entries)

    def snapshot_meta(self) -> SnapshotMeta | None:
        return self._snapshot

    # -- writes (the application, while handling Ready) ---------------------------------

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def append(self, entries: Sequence[Entry]) -> None:
        """Append ``entries`` (contiguous), replacing any suffix from the first one's index.

        Entries at or below the compaction point are skipped: they are already covered.
        """
        if not entries:
            return
        for before, after in itertools.pairwise(entries):
            assert after.index == before.index + 1, f"gap between {before} and {after}"
        first = entries[0].index
        if first > self.last_index() + 1:
            raise UnavailableError(
                f"append at {first} would leave a gap after last index {self.last_index()}"
            )
        kept = [entry for entry in entries if entry.index > self._offset_index]
        if not kept:
            return
        cut = kept[0].index - self._offset_index - 1
        del self._entries[cut:]
        self._entries.extend(kept)

    def apply_snapshot(self, meta: SnapshotMeta) -> None:
        """Install a snapshot received from the leader: the whole log is replaced by it."""
        if meta.index <= self._offset_index and self._snapshot is not None:
            raise CompactedError(
                f"snapshot at {meta.index} is older than the compaction point "
                f"{self._offset_index}"
            )
        self._snapshot = meta
        self._offset_index = meta.index
        self._offset_term = meta.term
        self._entries = []
        if self._hard_state.commit < meta.index:
            self._hard_state = HardState(self._hard_state.term, self._hard_state.vote, meta.index)

    def create_snapshot(self, meta: SnapshotMeta) -> None:
        """Record a snapshot the application took itself at ``meta.index`` (kept entries)."""
        if meta.index > self.last_index():
            raise UnavailableError(f"snapshot at {meta.index} is past last index")
        if self._snapshot is not None and meta.index <= self._snapshot.index:
            raise CompactedError(
                f"snapshot at {meta.index} is not newer than {self._snapshot.index}"
            )
        if meta.index < self._offset_index:
            raise CompactedError(f"snapshot at {meta.index} is behind the compaction point")
        term = self.term(meta.index)
        if term != meta.term:
            raise ValueError(f"snapshot at {meta.index} says term {meta.term}, log has {term}")
        self._snapshot = meta

    def compact(self, index: int) -> None:
        """Discard entries up to ``index`` inclusive; ``index`` must be covered by the
        newest snapshot (nothing is ever discarded that a snapshot does not replace)."""
        if index <= self._offset_index:
            return
        if self._snapshot is None or index > self._snapshot.index:
            raise ValueError(f"compact to {index} is not covered by a snapshot")
        if index > self._hard_state.commit:
            raise ValueError(f"compact to {index} is past the commit index")
        term = self.term(index)
        del self._entries[: index - self._offset_index]
        self._offset_index = index
        self._offset_term = term
