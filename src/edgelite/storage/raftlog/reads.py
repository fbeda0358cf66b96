"""Reading entries back: from the payload cache, else one pread per contiguous run."""

from __future__ import annotations

from collections.abc import Sequence

from edgelite.errors import StorageCorruptionError
from edgelite.raft.types import ENTRY_OVERHEAD_BYTES, Entry
from edgelite.storage.raftlog import fsio
from edgelite.storage.raftlog.index import EntryCache, LogIndex, RecordLocation
from edgelite.storage.raftlog.records import ENTRY_FIXED_BYTES, decode_entry
from edgelite.storage.raftlog.segments import Segment

__all__ = ["bounded_end", "read_entries"]


def bounded_end(index: LogIndex, lo: int, hi: int, bytes_max: int) -> int:
    """The end of the longest run of entries from ``lo`` whose ``entry_size_bytes`` total
    fits ``bytes_max`` (at least one entry), known from record sizes without any I/O."""
    total = 0
    for position in range(lo, hi):
        total += index.locate(position).size_bytes - ENTRY_FIXED_BYTES + ENTRY_OVERHEAD_BYTES
        if total > bytes_max and position > lo:
            return position
    return hi


def read_entries(index: LogIndex, cache: EntryCache, segments: Sequence[Segment], lo: int,
                 hi: int) -> list[Entry]:
    """Entries ``[lo, hi)`` (all present); StorageCorruptionError if a record changed on
    disk since it was checked at open or written."""
    result: list[Entry] = []
    run: list[RecordLocation] = []
    for position in range(lo, hi):
        cached = cache.get(position)
        if cached is not None:
            result.extend(_read_run(run, cache, segments))
            run = []
            result.append(cached)
            continue
        location = index.locate(position)
        if run and (location.seq != run[-1].seq
                    or location.offset != run[-1].offset + run[-1].size_bytes):
            result.extend(_read_run(run, cache, segments))
            run = []
        run.append(location)
    result.extend(_read_run(run, cache, segments))
    return result


def _read_run(run: list[RecordLocation], cache: EntryCache,
              segments: Sequence[Segment]) -> list[Entry]:
    if not run:
        return []
    segment = next(s for s in segments if s.seq == run[0].seq)
    start = run[0].offset
    data = fsio.pread_exact(segment.fd, run[-1].offset + run[-1].size_bytes - start, start,
                            segment.path)
    view = memoryview(data)
    entries = []
    for location in run:
        begin = location.offset - start
        try:
            entry = decode_entry(view[begin : begin + location.size_bytes])
        except ValueError as exc:
            raise StorageCorruptionError(
                f"raft log segment {segment.path} offset {location.offset}: {exc}"
            ) from exc
        cache.put(entry)
        entries.append(entry)
    return entries
