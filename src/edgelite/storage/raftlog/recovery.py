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

import logging
import os
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
    """Applies intact records to the index, checking they describe a possible log."""

    def __init__(self, state: LogState) -> None:
        self.index = LogIndex(state.offset_index, state.offset_term)
        self.commit = state.hard_state.commit
        # The commit index as of the current point of the file (COMMIT records only): a
        # replaced entry must lie above *that*; the state file's commit may be newer.
        self.stream_commit = 0

    def apply(self, path: Path, seq: int, record: ScannedRecord) -> None:
        if record.record_type == RecordType.COMMIT:
            self.commit = max(self.commit, record.value)
            self.stream_commit = max(self.stream_commit, record.value)
            return
        index, term = record.value, record.term
        where = f"raft log segment {path} offset {record.offset}"
        if index <= self.index.offset_index:
            return  # covered by the compaction point
        if index > self.index.last_index() + 1:
            raise StorageCorruptionError(
                f"{where}: entry {index} leaves a gap after {self.index.last_index()}"
            )
        if index <= self.index.last_index():
            if index <= self.stream_commit:
                raise StorageCorruptionError(
                    f"{where}: entry {index} rewrites a committed entry (commit "
                    f"{self.stream_commit})"
                )
            self.index.truncate_from(index)
        if term < self.index.last_term():
            raise StorageCorruptionError(
                f"{where}: entry {index} has term {term} after term {self.index.last_term()}"
            )
        self.index.add(index, term, RecordLocation(seq, record.offset, record.size_bytes))


def _check_torn_tail(path: Path, data: bytes, bad: BadRecord, replay: _Replay) -> None:
    """Raise unless the bad record at ``bad.offset`` can only be an unsynced write."""
    where = f"raft log segment {path} offset {bad.offset}"
    if bad.malformed:
        raise StorageCorruptionError(f"{where}: {bad.reason}")
    if replay.index.last_index() < replay.commit:
        raise StorageCorruptionError(
            f"{where}: {bad.reason}; the intact records end at index "
            f"{replay.index.last_index()}, below the durable commit index {replay.commit}"
        )
    following = find_intact_record(data, bad.offset + 1)
    if following is not None:
        raise StorageCorruptionError(
            f"{where}: {bad.reason}, but an intact record follows at offset {following}: "
            "damage inside the log, not a torn tail"
        )


def _cut_tail(segment: Segment, bad: BadRecord, file_bytes: int, recovered: Recovered) -> None:
    note = (f"torn tail of {segment.path}: cut {file_bytes - bad.offset} bytes at offset "
            f"{bad.offset} ({bad.reason})")
    logger.warning("raft log: %s", note)
    recovered.repairs.append(note)
    try:
        os.ftruncate(segment.fd, bad.offset)
    except OSError as exc:
        raise StorageError(f"truncating {segment.path} failed: {exc.strerror or exc}") from exc
    # Durable before anything new is written there: stale bytes must never reappear
    # behind new records after a later crash.
    fsio.fdatasync(segment.fd, segment.path)
    segment.size_bytes = bad.offset


def _recover_segment(directory: Path, seq: int, is_last: bool, replay: _Replay,
                     recovered: Recovered, dir_fd: int) -> None:
    path = segment_path(directory, seq)
    data = fsio.read_file(path)
    if decode_segment_header(data) != seq:
        bad = BadRecord(0, "missing or damaged segment header",
                        complete=len(data) >= SEGMENT_HEADER_BYTES)
        if not is_last:
            raise StorageCorruptionError(f"raft log segment {path} offset 0: {bad.reason}")
        _check_torn_tail(path, data, bad, replay)
        recovered.repairs.append(f"torn segment {path} ({len(data)} bytes) removed")
        _remove(path, "torn segment header")
        fsio.fsync_dir(dir_fd, directory)
        recovered.next_seq = seq
        return
    segment = open_segment(directory, seq, len(data))
    recovered.segments.append(segment)
    records, damage = scan_records(data, SEGMENT_HEADER_BYTES)
    for record in records:
        replay.apply(path, seq, record)
    if damage is not None:
        if not is_last:
            raise StorageCorruptionError(f"raft log segment {path} offset {damage.offset}: "
                                         f"{damage.reason} (not in the last segment)")
        _check_torn_tail(path, data, damage, replay)
        _cut_tail(segment, damage, len(data), recovered)
    recovered.next_seq = seq + 1


def recover(directory: Path, dir_fd: int, state: LogState) -> Recovered:
    """Rebuild the log described by ``state`` and the segment files of ``directory``."""
    replay = _Replay(state)
    recovered = Recovered(replay.index, state.hard_state.commit,
                          next_seq=state.first_segment_seq)
    try:
        live = _live_seqs(directory, dir_fd, state)
        for position, seq in enumerate(live):
            _recover_segment(directory, seq, position == len(live) - 1, replay, recovered,
                             dir_fd)
        if replay.index.last_index() < replay.commit:
            raise StorageCorruptionError(
                f"raft log {directory}: entries end at {replay.index.last_index()}, below the "
                f"durable commit index {replay.commit}"
            )
    except BaseException:
        for segment in recovered.segments:
            segment.close()
        raise
    recovered.commit = replay.commit
    return recovered
