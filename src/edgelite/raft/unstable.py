"""The part of the log the application has not yet persisted.

Entries (and at most one incoming snapshot) live here from the moment the core accepts
them until ``advance`` reports them durable; reads of the log look here first.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgelite.raft.types import Entry, SnapshotMeta

__all__ = ["Unstable"]


class Unstable:
    """Entries ``offset .. offset + len(entries) - 1`` not yet on stable storage, and an
    incoming snapshot not yet installed.

    Invariants: ``entries[k].index == offset + k``; with a snapshot,
    ``offset == snapshot.index + 1``.
    """

    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        assert offset >= 1
        self.offset = offset
        self.entries: list[Entry] = []
        self.snapshot: SnapshotMeta | None = None

    def check(self) -> None:
        for position, entry in enumerate(self.entries):
            assert entry.index == self.offset + position, f"unstable gap at {entry}"
        if self.snapshot is not None:
            assert self.offset == self.snapshot.index + 1

    def maybe_first_index(self) -> int | None:
        return self.snapshot.index + 1 if self.snapshot is not None else None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.index
        return None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.index == index:
                return self.snapshot.term
            return None
        position = index - self.offset
        if position >= len(self.entries):
            return None
        return self.entries[position].term

    def stable_to(self, index: int, term: int) -> bool:
        """Entries up to ``(index, term)`` are durable. Ignored (False) if that entry was
        replaced meanwhile, or already left the unstable part."""
        if index < self.offset or self.maybe_term(index) != term:
            return False
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1
        return True

    def stable_snapshot_to(self, index: int) -> bool:
        if self.snapshot is not None and self.snapshot.index == index:
            self.snapshot = None
            return True
        return False

    def restore(self, meta: SnapshotMeta) -> None:
        self.offset = meta.index + 1
        self.entries = []
        self.snapshot = meta

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        """Append, replacing every entry at or after ``entries[0].index``."""
        if not entries:
            return
        first = entries[0].index
        end = self.offset + len(self.entries)
        if first == end:
            self.entries.extend(entries)
        elif first <= self.offset:
            # Replaces everything here, and (for the application) part of stable storage.
            self.offset = first
            self.entries = list(entries)
        else:
            del self.entries[first - self.offset :]
            self.entries.extend(entries)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries ``[lo, hi)``, which must all be here."""
        assert self.offset <= lo <= hi <= self.offset + len(self.entries), (
            f"unstable slice [{lo}, {hi}) outside [{self.offset}, "
            f"{self.offset + len(self.entries)})"
        )
        return self.entries[lo - self.offset : hi - self.offset]
