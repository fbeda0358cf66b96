"""RaftLog: the node's log as one sequence, stable storage followed by the unstable tail.

Invariants (asserted where they can break):

- ``first_index() - 1 <= applied <= committed <= last_index()``;
- a committed entry is never truncated or replaced;
- every index in ``first_index() .. last_index()`` has an entry (no gaps).
"""

from __future__ import annotations

from collections.abc import Sequence

from edgelite.raft.errors import CompactedError, UnavailableError
from edgelite.raft.storage import Storage, limit_entries_bytes
from edgelite.raft.types import Entry, SnapshotMeta
from edgelite.raft.unstable import Unstable

__all__ = ["RaftLog"]


class RaftLog:
    __slots__ = ("applied", "committed", "storage", "unstable")

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        assert first >= 1 and last >= first - 1, f"storage first={first} last={last}"
        self.unstable = Unstable(last + 1)
        # The entry before the first one is covered by a snapshot: committed and applied.
        self.committed = first - 1
        self.applied = first - 1

    def check(self) -> None:
        # While an incoming snapshot awaits installation, applied may lag behind it.
        floor = self.first_index() - 1 if self.unstable.snapshot is None else 0
        assert floor <= self.applied <= self.committed <= self.last_index(), (
            f"log first={self.first_index()} applied={self.applied} "
            f"committed={self.committed} last={self.last_index()}"
        )

    # -- reading ------------------------------------------------------------------------

    def first_index(self) -> int:
        index = self.unstable.maybe_first_index()
        return index if index is not None else self.storage.first_index()

    def last_index(self) -> int:
        index = self.unstable.maybe_last_index()
        return index if index is not None else self.storage.last_index()

    def stable_last_index(self) -> int:
        """Highest index known durable here (entries below the unstable tail)."""
        if self.unstable.snapshot is not None:
            return 0  # storage still holds the log the snapshot is about to replace
        return min(self.storage.last_index(), self.unstable.offset - 1)

    def term(self, index: int) -> int:
        """Term at ``index``; raises CompactedError / UnavailableError out of range."""
        unstable = self.unstable
        if index >= unstable.offset:
            position = index - unstable.offset
            if position < len(unstable.entries):
                return unstable.entries[position].term
            raise UnavailableError(f"term of {index}: last index is {self.last_index()}")
        snapshot = unstable.snapshot
        if snapshot is not None:
            if index == snapshot.index:
                return snapshot.term
            raise CompactedError(f"term of {index}: log starts at {snapshot.index + 1}")
        # Below the unstable tail, storage holds the current entries (and raises itself).
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        try:
            return self.term(index)
        except (CompactedError, UnavailableError):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (CompactedError, UnavailableError):
            return False

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Paper §5.4.1: is a log ending at ``(last_index, last_term)`` at least as
        up-to-date as ours? Later last term wins; equal terms: longer log wins."""
        our_term = self.last_term()
        return last_term > our_term or (last_term == our_term and last_index >= self.last_index())

    def entries(self, lo: int, hi: int, bytes_max: int) -> list[Entry]:
        """Entries ``[lo, hi)`` limited to ``bytes_max`` (at least one entry)."""
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise CompactedError(f"entries from {lo}: log starts at {self.first_index()}")
        assert hi <= self.last_index() + 1, f"entries to {hi}: last is {self.last_index()}"
        offset = self.unstable.offset
        if lo >= offset:
            return limit_entries_bytes(self.unstable.slice(lo, hi), bytes_max)
        stable = self.storage.entries(lo, min(hi, offset), bytes_max)
        if hi <= offset or len(stable) < offset - lo:
            return stable  # all from storage, or the byte limit stopped us there
        return limit_entries_bytes(stable + self.unstable.slice(offset, hi), bytes_max)

    def snapshot_meta(self) -> SnapshotMeta | None:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot_meta()

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Index of the first entry whose term differs from ours (or that we lack); 0 if
        all of ``entries`` are already in the log."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest ``i <= index`` whose term is ``<= term``, and that term; stops at
        the compaction point (returning it with term 0 when unknown)."""
        while index > 0:
            try:
                our_term = self.term(index)
            except CompactedError:
                return index, 0
            if our_term <= term:
                return index, our_term
            index -= 1
        return 0, 0

    # -- writing ------------------------------------------------------------------------

    def maybe_append(
        self, prev_index: int, prev_term: int, commit: int, entries: Sequence[Entry]
    ) -> int | None:
        """AppendEntries receiver (paper Figure 2): None if ``(prev_index, prev_term)``
        does not match; else append, commit up to what matched, return the last index
        known to match the leader."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            assert conflict > self.committed, (
                f"entry {conflict} conflicts but is committed (commit {self.committed})"
            )
            self.append(entries[conflict - prev_index - 1 :])
        self.commit_to(min(commit, last_new))
        return last_new

    def append(self, entries: Sequence[Entry]) -> int:
        if entries:
            assert entries[0].index > self.committed, (
                f"append at {entries[0].index} would overwrite committed {self.committed}"
            )
            assert entries[0].index <= self.last_index() + 1, "append leaves a gap"
            self.unstable.truncate_and_append(entries)
        return self.last_index()

    def commit_to(self, index: int) -> None:
        """Raise the commit index (never lower it)."""
        if index > self.committed:
            assert index <= self.last_index(), (
                f"commit {index} is past the last index {self.last_index()}"
            )
            self.committed = index

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        assert self.applied <= index <= self.committed, (
            f"applied {index} outside [{self.applied}, {self.committed}]"
        )
        self.applied = index

    def restore(self, meta: SnapshotMeta) -> None:
        """Replace the log by ``meta`` (an incoming snapshot not matching our log)."""
        assert meta.index > self.committed, "restoring a snapshot behind the commit index"
        self.unstable.restore(meta)
        self.committed = meta.index

    def stable_to(self, index: int, term: int) -> bool:
        return self.unstable.stable_to(index, term)

    def stable_snapshot_to(self, index: int) -> bool:
        return self.unstable.stable_snapshot_to(index)

    # -- what to apply ------------------------------------------------------------------

    def has_next_committed_entries(self) -> bool:
        if self.unstable.snapshot is not None:
            return False  # the snapshot must be installed first
        return self.committed > max(self.applied, self.first_index() - 1)

    def next_committed_entries(self, bytes_max: int) -> list[Entry]:
        if not self.has_next_committed_entries():
            return []
        lo = max(self.applied + 1, self.first_index())
        return self.entries(lo, self.committed + 1, bytes_max)
