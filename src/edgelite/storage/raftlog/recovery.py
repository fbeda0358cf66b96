"""Start-up recovery: rebuild the in-memory index from the segment files.

Rules (docs/design/raftlog.md explains why):

* Segments below the state file's ``first_segment_seq`` are dead; their files are
  removed. The live ones must have consecutive seqs starting at ``first_segment_seq``.
* Records are replayed in file order with the semantics of ``append``: an entry at an
  index already present replaces that entry and everything after it; entries at or
  below the compaction point are skipped; a gap or a decreasing term is damage.
* The first bad record of the **last** segment starts a *torn tail*, which is cut off
  (and the cut made durable) only if (a) the intact records before it hold every entry
  up to the durable commit index and (b) no intact record follows it. Anything else --
  a bad record in an older segment, a missing committed entry, intact records after the
  bad one, a record whose checksum matches but whose content is impossible -- raises
  StorageCorruptionError naming the file and offset. Nothing is ever silently dropped.
"""

from __future__ import annotations

import bisect
import logging
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from edgelite.errors import StorageCorruptionError, StorageError
from edgelite.storage.raftlog import fsio
from edgelite.storage.raftlog.index import LogIndex, RecordLocation
from edgelite.storage.raftlog.records import (
    SEGMENT_HEADER_BYTES,
    BadRecord,
    RecordType,
    ScannedRecord,
    decode_segment_header,
    find_intact_record,
    scan_records,
)
from edgelite.storage.raftlog.segments import Segment, list_segments, open_segment, segment_path
from edgelite.storage.raftlog.state import LogState

__all__ = ["Recovered", "recover"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Recovered:
    """The result of recovery. ``commit``: the durable commit index (state file or the
    newest COMMIT record, whichever is higher). ``segments``: open live segments, oldest
    first; the last one is where appends continue. ``repairs``: what was cut off."""

    index: LogIndex
    commit: int
    segments: list[Segment] = field(default_factory=list)
    next_seq: int = 1
    repairs: list[str] = field(default_factory=list)


def _remove(path: Path, why: str) -> None:
    logger.warning("raft log: removing %s (%s)", path, why)
    try:
        os.unlink(path)
    except OSError as exc:
        raise StorageError(f"removing {path} failed: {exc.strerror or exc}") from exc


def _live_seqs(directory: Path, dir_fd: int, state: LogState) -> list[int]:
    seqs = list_segments(directory)
    dead = [seq for seq in seqs if seq < state.first_segment_seq]
    for seq in dead:
        _remove(segment_path(directory, seq), "dead: behind the compaction point")
    if dead:
        fsio.fsync_dir(dir_fd, directory)
    live = [seq for seq in seqs if seq >= state.first_segment_seq]
    expected = list(range(state.first_segment_seq, state.first_segment_seq + len(live)))
    if live != expected:
        missing = sorted(set(range(state.first_segment_seq, live[-1] + 1)) - set(live))
        raise StorageCorruptionError(
            f"raft log {directory}: segment files {[f'{s:016x}.seg' for s in missing]} are "
            f"missing (live segments start at {state.first_segment_seq:016x})"
        )
    return live


class _Replay:
    """Applies intact records in file order with ``append``'s semantics.

    An entry record at index ``i`` replaces every entry at ``i`` and above (a record at
    or below the compaction point thus drops all entries after the point). Records that a
    later record replaced may leave holes on the way (their predecessors can sit in a
    segment that compaction deleted), so contiguity is checked once, at the end, on the
    entries that survive -- see :meth:`build`.
    """

    def __init__(self, state: LogState) -> None:
        self.offset_index = state.offset_index
        self.offset_term = state.offset_term
        self.commit = state.hard_state.commit
        # The commit index as of the current point of the files (COMMIT records only).
        # Every entry was written above the commit index of its time, so an entry record
        # at or below this one is damage; the state file's commit may be newer.
        self.stream_commit = 0
        self._indexes = array("q")
        self._terms = array("q")
        self._seqs = array("q")
        self._offsets = array("q")
        self._sizes = array("q")

    def apply(self, path: Path, seq: int, record: ScannedRecord) -> None:
        if record.record_type == RecordType.COMMIT:
            self.commit = max(self.commit, record.value)
            self.stream_commit = max(self.stream_commit, record.value)
            return
        index = record.value
        if index <= self.stream_commit:
            raise StorageCorruptionError(
                f"raft log segment {path} offset {record.offset}: entry {index} is at or "
                f"below the commit index {self.stream_commit} written before it"
            )
        cut = bisect.bisect_left(self._indexes, index)
        for column in (self._indexes, self._terms, self._seqs, self._offsets, self._sizes):
            del column[cut:]
        if index <= self.offset_index:
            return  # covered by the compaction point
        self._indexes.append(index)
        self._terms.append(record.term)
        self._seqs.append(seq)
        self._offsets.append(record.offset)
        self._sizes.append(record.size_bytes)

    def build(self, directory: Path) -> LogIndex:
        """The index of the surviving entries; they must run contiguously from the
        compaction point with non-decreasing terms."""
        log = LogIndex(self.offset_index, self.offset_term)
        for slot, index in enumerate(self._indexes):
            seq, offset, term = self._seqs[slot], self._offsets[slot], self._terms[slot]
            where = f"raft log segment {segment_path(directory, seq)} offset {offset}"
            if index != log.last_index() + 1:
                raise StorageCorruptionError(
                    f"{where}: entry {index} leaves a gap after {log.last_index()}"
                )
            if term < log.last_term():
                raise StorageCorruptionError(
                    f"{where}: entry {index} has term {term} after term {log.last_term()}"
                )
            log.add(index, term, RecordLocation(seq, offset, self._sizes[slot]))
        return log


@dataclass(frozen=True, slots=True)
class _TailDamage:
    """The first bad spot of the last segment (``segment`` None: its header is bad)."""

    path: Path
    data: bytes
    bad: BadRecord
    segment: Segment | None


def _check_torn_tail(damage: _TailDamage, index: LogIndex, commit: int) -> None:
    """Raise unless the damage can only be the unsynced end of the log."""
    bad = damage.bad
    where = f"raft log segment {damage.path} offset {bad.offset}"
    if bad.malformed:
        raise StorageCorruptionError(f"{where}: {bad.reason}")
    if index.last_index() < commit:
        raise StorageCorruptionError(
            f"{where}: {bad.reason}; the intact records end at index {index.last_index()}, "
            f"below the durable commit index {commit}"
        )
    following = find_intact_record(damage.data, bad.offset + 1)
    if following is not None:
        raise StorageCorruptionError(
            f"{where}: {bad.reason}, but an intact record follows at offset {following}: "
            "damage inside the log, not a torn tail"
        )


def _cut_tail(damage: _TailDamage, recovered: Recovered, directory: Path, dir_fd: int) -> None:
    bad, segment = damage.bad, damage.segment
    if segment is None:
        note = f"torn segment {damage.path} ({len(damage.data)} bytes): removed"
        _remove(damage.path, "torn segment header")
        fsio.fsync_dir(dir_fd, directory)
        recovered.next_seq -= 1
    else:
        note = (f"torn tail of {damage.path}: cut {len(damage.data) - bad.offset} bytes at "
                f"offset {bad.offset} ({bad.reason})")
        try:
            os.ftruncate(segment.fd, bad.offset)
        except OSError as exc:
            raise StorageError(f"truncating {damage.path} failed: {exc.strerror or exc}") from exc
        # Durable before anything new is written there: stale bytes must never reappear
        # behind new records after a later crash.
        fsio.fdatasync(segment.fd, damage.path)
        segment.size_bytes = bad.offset
    logger.warning("raft log: %s", note)
    recovered.repairs.append(note)


def _recover_segment(directory: Path, seq: int, is_last: bool, replay: _Replay,
                     recovered: Recovered) -> _TailDamage | None:
    """Replay one segment; damage is fatal unless it is in the last one (returned)."""
    path = segment_path(directory, seq)
    data = fsio.read_file(path)
    recovered.next_seq = seq + 1
    if decode_segment_header(data) != seq:
        bad = BadRecord(0, "missing or damaged segment header",
                        complete=len(data) >= SEGMENT_HEADER_BYTES)
        if not is_last:
            raise StorageCorruptionError(f"raft log segment {path} offset 0: {bad.reason}")
        return _TailDamage(path, data, bad, None)
    segment = open_segment(directory, seq, len(data))
    recovered.segments.append(segment)
    records, bad_record = scan_records(data, SEGMENT_HEADER_BYTES)
    for record in records:
        replay.apply(path, seq, record)
    if bad_record is None:
        return None
    if not is_last:
        raise StorageCorruptionError(f"raft log segment {path} offset {bad_record.offset}: "
                                     f"{bad_record.reason} (not in the last segment)")
    return _TailDamage(path, data, bad_record, segment)


def recover(directory: Path, dir_fd: int, state: LogState) -> Recovered:
    """Rebuild the log described by ``state`` and the segment files of ``directory``."""
    replay = _Replay(state)
    recovered = Recovered(LogIndex(), state.hard_state.commit,
                          next_seq=state.first_segment_seq)
    try:
        live = _live_seqs(directory, dir_fd, state)
        damage = None
        for position, seq in enumerate(live):
            damage = _recover_segment(directory, seq, position == len(live) - 1, replay,
                                      recovered)
        index = replay.build(directory)
        if damage is not None:
            _check_torn_tail(damage, index, replay.commit)
            _cut_tail(damage, recovered, directory, dir_fd)
        if index.last_index() < replay.commit:
            raise StorageCorruptionError(
                f"raft log {directory}: entries end at {index.last_index()}, below the "
                f"durable commit index {replay.commit}"
            )
    except BaseException:
        for segment in recovered.segments:
            segment.close()
        raise
    recovered.index = index
    recovered.commit = replay.commit
    return recovered
