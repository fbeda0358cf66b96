"""Which database each log entry wrote: the index behind sync pulls, change streams and
retention.

Replicas and change consumers ask for "the entries of database D after index I".
Scanning the Raft log for that on every request would decode every entry of every
database; instead ``EntryIndex`` scans each applied entry once (in order, on a worker
thread) and keeps, per database, the sorted indexes of its entries, plus each entry's
size and commit time (for retention by bytes and by age).

Coverage: the index knows every entry in ``base .. scanned``; it was complete from
``complete_from`` on (the log's first index when it was built, or after a snapshot
install replaced the log). Entries the log compacted away leave a per-database
``floor``: the newest entry of that database the index no longer holds. A position
``since`` is *available* for D iff ``since >= complete_from - 1`` and
``since >= floor[D]``: then no entry of D after ``since`` is missing. This is what lets
an idle database's replicas resume after compaction without a new snapshot.

Invariants: ``complete_from <= base <= scanned + 1``; each per-database array is
sorted and within ``base .. scanned``; ``len(sizes) == len(times) == scanned - base + 1``.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from array import array
from collections.abc import Sequence
from typing import Protocol

from edgelite.cluster.commands import WriteCommand, decode_command
from edgelite.raft import Entry, EntryKind
from edgelite.raft.errors import CompactedError

SCAN_BATCH_BYTES = 8 << 20


class LogReader(Protocol):
    def entries(self, lo: int, hi: int, bytes_max: int) -> list[Entry]: ...
    def first_index(self) -> int: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Retention:
    """How much log a member keeps behind its applied index, whatever snapshots say:
    at least ``entries`` entries, at least ``bytes`` bytes of entries, and every entry
    at most ``age_s`` old (each 0 = no guarantee of that kind)."""

    entries: int = 0
    bytes: int = 0
    age_s: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Retained:
    """What the log holds now (for /metrics)."""

    first_index: int
    bytes: int
    oldest_committed_at_ms: int | None


class EntryIndex:
    def __init__(self, log: LogReader) -> None:
        self.log = log
        self.complete_from = 0
        self.base = 0
        self.scanned = 0
        self._built = False
        self._sizes = array("q")
        self._times = array("q")
        self._by_db: dict[str, array[int]] = {}
        self._floor: dict[str, int] = {}
        self._lock = threading.Lock()  # the arrays (short holds)
        self._scan_lock = threading.Lock()  # one scanner at a time (long holds)

    # --- scanning (worker threads) -------------------------------------------------------

    def catch_up(self, upto: int) -> None:
        """Blocking: index every entry up to ``upto`` (an applied index)."""
        with self._scan_lock:
            self._follow_compaction()
            lo = self.scanned + 1
            while lo <= upto:
                try:
                    batch = self.log.entries(lo, upto + 1, SCAN_BATCH_BYTES)
                except CompactedError:
                    self._follow_compaction()
                    lo = self.scanned + 1
                    continue
                if not batch:
                    break
                self._add(batch)
                lo = batch[-1].index + 1

    def _follow_compaction(self) -> None:
        first = self.log.first_index()
        with self._lock:
            if not self._built or first > self.scanned + 1:
                # First build, or the log was replaced past what was scanned (a snapshot
                # was installed): nothing before ``first`` can be known any more.
                self._reset(first)
            elif first > self.base:
                self._trim(first - 1)

    def _reset(self, first: int) -> None:
        self._built = True
        self.complete_from = self.base = first
        self.scanned = first - 1
        self._sizes, self._times = array("q"), array("q")
        self._by_db = {}
        self._floor = {}

    def _trim(self, through: int) -> None:
        cut = through - self.base + 1
        del self._sizes[:cut]
        del self._times[:cut]
        for name, indexes in self._by_db.items():
            dropped = bisect.bisect_right(indexes, through)
            if dropped:
                self._floor[name] = max(self._floor.get(name, 0), indexes[dropped - 1])
                del indexes[:dropped]
        self.base = through + 1

    def _add(self, batch: Sequence[Entry]) -> None:
        described = [_describe(entry) for entry in batch]  # decode outside the lock
        with self._lock:
            assert batch[0].index == self.scanned + 1, (batch[0].index, self.scanned)
            for entry, (database, at_ms) in zip(batch, described, strict=True):
                self._sizes.append(len(entry.data))
                self._times.append(at_ms)
                if database is not None:
                    self._by_db.setdefault(database, array("q")).append(entry.index)
            self.scanned = batch[-1].index

    # --- questions (any thread, short) -----------------------------------------------------

    def available(self, database: str, since: int) -> bool:
        with self._lock:
            return since >= self.complete_from - 1 and since >= self._floor.get(database, 0)

    def retained_from(self, database: str) -> int:
        """The oldest ``since`` this member can serve for ``database``."""
        with self._lock:
            return max(self.complete_from - 1, self._floor.get(database, 0))

    def entries_after(self, database: str, since: int, count_max: int) -> list[int]:
        """Indexes of ``database``'s entries after ``since`` (scanned ones), oldest first."""
        with self._lock:
            indexes = self._by_db.get(database)
            if indexes is None:
                return []
            start = bisect.bisect_right(indexes, since)
            return list(indexes[start:start + count_max])

    def committed_at_ms(self, index: int) -> int:
        with self._lock:
            if not self.base <= index <= self.scanned:
                return 0
            return self._times[index - self.base]

    def retained(self) -> Retained:
        with self._lock:
            oldest = next((t for t in self._times if t), None)
            return Retained(self.base, sum(self._sizes), oldest)

    def compaction_floor(self, retention: Retention, applied: int, now_ms: int) -> int:
        """The highest index the log may be compacted through without dropping an entry
        inside the retention window behind ``applied`` (call ``catch_up`` first)."""
        with self._lock:
            floor = applied - retention.entries if retention.entries else applied
            last = min(applied, self.scanned)
            if retention.bytes:
                floor = min(floor, self._bytes_floor(retention.bytes, last))
            if retention.age_s:
                cutoff_ms = now_ms - int(retention.age_s * 1000)
                floor = min(floor, self._age_floor(cutoff_ms, last))
            return max(0, floor)

    def _bytes_floor(self, bytes_min: int, last: int) -> int:
        total = 0
        index = last
        while index >= self.base:
            total += self._sizes[index - self.base]
            if total >= bytes_min:
                return index - 1
            index -= 1
        return self.base - 1

    def _age_floor(self, cutoff_ms: int, last: int) -> int:
        index = last
        while index >= self.base:
            at_ms = self._times[index - self.base]
            if at_ms and at_ms < cutoff_ms:
                return index
            index -= 1
        return self.base - 1


def _describe(entry: Entry) -> tuple[str | None, int]:
    """The database an entry writes and its commit time (None, 0 for anything else)."""
    if entry.kind is not EntryKind.NORMAL or not entry.data:
        return None, 0
    command = decode_command(entry.data)
    if isinstance(command, WriteCommand):
        return command.database, command.committed_at_ms
    return None, 0


__all__ = ["EntryIndex", "LogReader", "Retained", "Retention"]
