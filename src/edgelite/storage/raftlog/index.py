"""In-memory maps of the log: where each entry's record lives, and recent payloads.

Neither class locks: :class:`~edgelite.storage.raftlog.store.RaftLogStore` holds its
lock around every use.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from dataclasses import dataclass

from edgelite.raft.types import ENTRY_OVERHEAD_BYTES, Entry, entry_size_bytes

__all__ = ["EntryCache", "LogIndex", "RecordLocation"]


@dataclass(frozen=True, slots=True)
class RecordLocation:
    seq: int
    offset: int
    size_bytes: int


class LogIndex:
    """Entries ``first_index .. last_index`` after the compaction point ``offset``.

    Invariants: the four arrays have one slot per entry, slot ``k`` describing index
    ``offset_index + 1 + k``; segment seqs never decrease along the index (appends only
    go to the newest segment), so the oldest segment still needed is ``seq`` of slot 0.
    """

    def __init__(self, offset_index: int = 0, offset_term: int = 0) -> None:
        self.offset_index = offset_index
        self.offset_term = offset_term
        self._terms = array("q")
        self._seqs = array("q")
        self._offsets = array("q")
        self._sizes = array("q")

    def first_index(self) -> int:
        return self.offset_index + 1

    def last_index(self) -> int:
        return self.offset_index + len(self._terms)

    def term(self, index: int) -> int:
        """Term at ``index`` in ``offset_index .. last_index`` (caller checks the range)."""
        if index == self.offset_index:
            return self.offset_term
        return self._terms[index - self.offset_index - 1]

    def last_term(self) -> int:
        return self._terms[-1] if self._terms else self.offset_term

    def locate(self, index: int) -> RecordLocation:
        slot = index - self.offset_index - 1
        return RecordLocation(self._seqs[slot], self._offsets[slot], self._sizes[slot])

    def oldest_seq(self) -> int | None:
        """Seq of the oldest segment holding a live entry (None when there are none)."""
        return self._seqs[0] if self._seqs else None

    def seq_of(self, index: int) -> int:
        return self._seqs[index - self.offset_index - 1]

    def add(self, index: int, term: int, location: RecordLocation) -> None:
        """Record entry ``index``; it must be ``last_index + 1`` (truncate first)."""
        assert index == self.last_index() + 1, f"index {index} after {self.last_index()}"
        assert term >= self.last_term(), f"term {term} after {self.last_term()}"
        self._terms.append(term)
        self._seqs.append(location.seq)
        self._offsets.append(location.offset)
        self._sizes.append(location.size_bytes)

    def extend(self, first: int, terms: list[int], seqs: list[int], offsets: list[int],
               sizes: list[int]) -> None:
        """``add`` for consecutive entries from ``first`` (one call per append batch)."""
        assert first == self.last_index() + 1, f"index {first} after {self.last_index()}"
        assert terms[0] >= self.last_term() and terms == sorted(terms), "terms decrease"
        self._terms.extend(terms)
        self._seqs.extend(seqs)
        self._offsets.extend(offsets)
        self._sizes.extend(sizes)

    def truncate_from(self, index: int) -> None:
        """Forget entries ``index ..`` (``index > offset_index``)."""
        assert index > self.offset_index, f"truncate at {index} <= offset {self.offset_index}"
        cut = index - self.offset_index - 1
        for column in (self._terms, self._seqs, self._offsets, self._sizes):
            del column[cut:]

    def compact(self, index: int) -> None:
        """Forget entries up to ``index`` inclusive; ``index`` becomes the offset."""
        assert self.offset_index <= index <= self.last_index()
        term = self.term(index)
        cut = index - self.offset_index
        for column in (self._terms, self._seqs, self._offsets, self._sizes):
            del column[:cut]
        self.offset_index = index
        self.offset_term = term

    def reset(self, index: int, term: int) -> None:
        """Forget every entry; the log restarts after ``index`` at ``term``."""
        self.offset_index = index
        self.offset_term = term
        for column in (self._terms, self._seqs, self._offsets, self._sizes):
            del column[:]


class EntryCache:
    """Recently appended or read entries, bounded by ``bytes_max`` (least recently used
    entries are evicted first). A cached entry is always identical to its record."""

    def __init__(self, bytes_max: int) -> None:
        self.bytes_max = bytes_max
        self.bytes_used = 0
        self._entries: OrderedDict[int, Entry] = OrderedDict()

    def get(self, index: int) -> Entry | None:
        entry = self._entries.get(index)
        if entry is not None:
            self._entries.move_to_end(index)
        return entry

    def put(self, entry: Entry) -> None:
        size = entry_size_bytes(entry)
        if size > self.bytes_max:
            return
        old = self._entries.pop(entry.index, None)
        if old is not None:
            self.bytes_used -= entry_size_bytes(old)
        self._entries[entry.index] = entry
        self.bytes_used += size
        while self.bytes_used > self.bytes_max:
            _, evicted = self._entries.popitem(last=False)
            self.bytes_used -= entry_size_bytes(evicted)

    def put_many(self, entries: list[Entry]) -> None:
        """``put`` for a batch of new entries (the append path, kept tight)."""
        cache, used, bytes_max = self._entries, self.bytes_used, self.bytes_max
        for entry in entries:
            size = len(entry.data) + ENTRY_OVERHEAD_BYTES
            if size > bytes_max:
                continue
            old = cache.pop(entry.index, None)
            if old is not None:
                used -= len(old.data) + ENTRY_OVERHEAD_BYTES
            cache[entry.index] = entry
            used += size
        while used > bytes_max:
            _, evicted = cache.popitem(last=False)
            used -= len(evicted.data) + ENTRY_OVERHEAD_BYTES
        self.bytes_used = used

    def _drop(self, indexes: list[int]) -> None:
        for index in indexes:
            self.bytes_used -= entry_size_bytes(self._entries.pop(index))

    def drop_from(self, index: int) -> None:
        self._drop([k for k in self._entries if k >= index])

    def drop_through(self, index: int) -> None:
        self._drop([k for k in self._entries if k <= index])

    def clear(self) -> None:
        self._entries.clear()
        self.bytes_used = 0
