"""RaftLogStore: the durable ``edgelite.raft.Storage`` (segment files + a state file).

Threads: one thread at a time writes (``append``, ``set_hard_state``, ``sync``,
``compact``, ...; the member's log thread), any thread reads (the Raft core). Reads never
wait for an fdatasync: syncs run outside the state lock.

Durability contract: nothing written is promised durable until ``sync()`` returns; then
everything written before the call is (cumulative: segment data, new segment directory
entries, hard state). A failed write or sync fails the store for good: every later call
raises StorageError; reopening recovers from what is on disk.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from edgelite.errors import StorageCorruptionError, StorageError
from edgelite.raft.errors import CompactedError, UnavailableError
from edgelite.raft.types import (
    ConfState,
    Entry,
    HardState,
    SnapshotMeta,
)
from edgelite.storage.raftlog import fsio
from edgelite.storage.raftlog.index import EntryCache, LogIndex
from edgelite.storage.raftlog.reads import bounded_end, read_entries
from edgelite.storage.raftlog.records import (
    ENTRY_DATA_BYTES_MAX,
    SEGMENT_HEADER_BYTES,
    encode_commit,
    encode_entry,
)
from edgelite.storage.raftlog.recovery import recover
from edgelite.storage.raftlog.segments import Segment, create_segment
from edgelite.storage.raftlog.state import LogState, encode_state, load_state

__all__ = ["RaftLogStore"]

logger = logging.getLogger(__name__)

STATE_FILE = "state"
LOCK_FILE = "LOCK"


class RaftLogStore:
    """Durable Raft log. Behaves exactly like ``MemoryStorage`` (same answers, same
    errors) plus durability; see the module docstring for threads and durability.

    Invariants: the newest segment (``_segments[-1]``) is the only one written;
    ``_index`` maps every entry to an intact record; ``_hard_state.commit <=
    last_index()``; ``_written`` is the state file's content.
    """

    def __init__(self, directory: Path, dir_fd: int, lock_fd: int, state: LogState,
                 segment_bytes_max: int, cache_bytes_max: int) -> None:
        self.directory = directory
        self.segment_bytes_max = segment_bytes_max
        self._dir_fd = dir_fd
        self._lock_fd = lock_fd
        self._written = state
        self._lock = threading.Lock()  # in-memory state; never held across a sync
        self._writer = threading.RLock()  # serialises writers (sync included)
        self._failure: str | None = None
        self._closed = False
        recovered = recover(directory, dir_fd, state)
        self.repairs = recovered.repairs
        self._index: LogIndex = recovered.index
        self._segments: list[Segment] = recovered.segments
        self._next_seq = recovered.next_seq
        self._cache = EntryCache(cache_bytes_max)
        self._hard_state = replace(state.hard_state, commit=recovered.commit)
        self._logged_commit = recovered.commit
        self._dir_dirty = False

    @classmethod
    def open(cls, directory: Path, *, segment_bytes_max: int = 64 << 20,
             cache_bytes_max: int = 64 << 20) -> RaftLogStore:
        """Open (creating it if needed) the log in ``directory`` and recover it; raises
        StorageCorruptionError if it is damaged beyond a torn tail."""
        if segment_bytes_max < 4096:
            raise ValueError(f"segment_bytes_max {segment_bytes_max} is below 4096")
        directory = Path(directory)
        created = not directory.exists()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"creating {directory} failed: {exc.strerror or exc}") from exc
        if created:
            parent_fd = fsio.open_dir(directory.parent)
            try:
                fsio.fsync_dir(parent_fd, directory.parent)
            finally:
                os.close(parent_fd)
        lock_fd = fsio.lock_directory(directory / LOCK_FILE)
        dir_fd = -1
        try:
            dir_fd = fsio.open_dir(directory)
            state = load_state(directory / STATE_FILE)
            return cls(directory, dir_fd, lock_fd, state, segment_bytes_max, cache_bytes_max)
        except BaseException:
            if dir_fd >= 0:
                os.close(dir_fd)
            os.close(lock_fd)
            raise

    # -- raft.Storage (any thread) -------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        with self._lock:
            self._check_usable()
            snapshot = self._written.snapshot
            conf = snapshot.conf_state if snapshot is not None else self._written.conf_state
            return self._hard_state, conf

    def entries(self, lo: int, hi: int, bytes_max: int) -> list[Entry]:
        with self._lock:
            self._check_usable()
            index = self._index
            if lo <= index.offset_index:
                raise CompactedError(f"entries from {lo}: compacted up to {index.offset_index}")
            if hi > index.last_index() + 1:
                raise UnavailableError(
                    f"entries up to {hi - 1}: last index is {index.last_index()}"
                )
            if lo >= hi:
                return []
            end = bounded_end(self._index, lo, hi, bytes_max)
            try:
                return read_entries(self._index, self._cache, self._segments, lo, end)
            except StorageCorruptionError as exc:
                self._failure = self._failure or exc.message  # damage found at run time
                logger.error("raft log %s failed: %s", self.directory, exc.message)
                raise

    def term(self, index: int) -> int:
        with self._lock:
            self._check_usable()
            offset = self._index.offset_index
            if index < offset:
                raise CompactedError(f"term of {index}: compacted up to {offset}")
            if index > self._index.last_index():
                raise UnavailableError(
                    f"term of {index}: last index is {self._index.last_index()}"
                )
            return self._index.term(index)

    def first_index(self) -> int:
        with self._lock:
            self._check_usable()
            return self._index.first_index()

    def last_index(self) -> int:
        with self._lock:
            self._check_usable()
            return self._index.last_index()

    def snapshot_meta(self) -> SnapshotMeta | None:
        with self._lock:
            self._check_usable()
            return self._written.snapshot

    @property
    def hard_state(self) -> HardState:
        with self._lock:
            return self._hard_state

    # -- writes (the log thread) ---------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Append ``entries`` (contiguous), replacing any suffix from the first one's index;
        entries at or below the compaction point, or already present with the same term,
        are skipped. Not durable until ``sync``."""
        if not entries:
            return
        for before, after in itertools.pairwise(entries):
            assert after.index == before.index + 1, f"gap between {before} and {after}"
        with self._writing():
            last = self._index.last_index()
            if entries[0].index > last + 1:
                raise UnavailableError(
                    f"append at {entries[0].index} would leave a gap after last index {last}"
                )
            kept = [entry for entry in entries if entry.index > self._index.offset_index]
            if not kept:
                return
            # Entries already present with the same term are the same entries (Raft's log
            # matching property), so they are not written again -- except the last one
            # when the log goes further: rewriting it is what drops the suffix after it.
            skip = 0
            while (skip < len(kept) - 1 and kept[skip].index <= last
                   and self._index.term(kept[skip].index) == kept[skip].term):
                skip += 1
            if (skip == len(kept) - 1 and kept[-1].index == last
                    and self._index.term(last) == kept[-1].term):
                skip += 1
            kept = kept[skip:]
            if not kept:
                return
            cut = kept[0].index
            if cut <= last:
                assert cut > self._hard_state.commit, (
                    f"append at {cut} would replace committed entries (commit "
                    f"{self._hard_state.commit})"
                )
                with self._lock:
                    self._index.truncate_from(cut)
                    self._cache.drop_from(cut)
            self._write_entries(kept)

    def set_hard_state(self, state: HardState) -> None:
        """Record term, vote and commit. A commit change is logged as a COMMIT record (so
        the next sync covers it at no extra cost); a term or vote change rewrites the state
        file at the next sync."""
        with self._writing():
            old = self._hard_state
            assert state.commit >= old.commit, f"commit {old.commit} -> {state.commit}"
            assert state.commit <= self._index.last_index(), (
                f"commit {state.commit} is past last index {self._index.last_index()}"
            )
            if state.commit > self._logged_commit:
                self._write_records([encode_commit(state.commit)])
                self._logged_commit = state.commit
            with self._lock:
                self._hard_state = state

    def set_conf_state(self, conf: ConfState) -> None:
        """Persist the configuration at index 0 (used when there is no snapshot). Durable
        on return (it syncs)."""
        with self._writing():
            self._sync_and_write_state(replace(self._written, conf_state=conf))

    def sync(self) -> None:
        """fdatasync everything written so far; on return it is all durable."""
        with self._writing():
            self._sync_segments()
            if (self._hard_state.term, self._hard_state.vote) != (
                self._written.hard_state.term,
                self._written.hard_state.vote,
            ):
                self._write_state(replace(self._written, hard_state=self._hard_state))

    def create_snapshot(self, meta: SnapshotMeta) -> None:
        """Record a snapshot the application took itself at ``meta.index`` (the log keeps
        its entries until ``compact``). Durable on return."""
        with self._writing():
            index, newest = self._index, self._written.snapshot
            if meta.index > index.last_index():
                raise UnavailableError(f"snapshot at {meta.index} is past last index")
            if newest is not None and meta.index <= newest.index:
                raise CompactedError(
                    f"snapshot at {meta.index} is not newer than {newest.index}"
                )
            if meta.index < index.offset_index:
                raise CompactedError(f"snapshot at {meta.index} is behind the compaction point")
            term = index.term(meta.index)
            if term != meta.term:
                raise ValueError(f"snapshot at {meta.index} says term {meta.term}, log has {term}")
            self._sync_and_write_state(replace(self._written, snapshot=meta))

    def apply_snapshot(self, meta: SnapshotMeta) -> None:
        """Install a snapshot received from the leader: the whole log is replaced by it.
        Durable on return."""
        with self._writing():
            if meta.index <= self._index.offset_index and self._written.snapshot is not None:
                raise CompactedError(
                    f"snapshot at {meta.index} is older than the compaction point "
                    f"{self._index.offset_index}"
                )
            hard = self._hard_state
            if hard.commit > meta.index:
                raise ValueError(f"snapshot at {meta.index} is behind commit {hard.commit}")
            new_seq = self._next_seq
            state = LogState(
                hard_state=HardState(hard.term, hard.vote, meta.index),
                conf_state=self._written.conf_state,
                offset_index=meta.index,
                offset_term=meta.term,
                first_segment_seq=new_seq,
                snapshot=meta,
            )
            # The old segments need no sync: the state file makes them dead at once.
            self._write_state(state)
            with self._lock:
                dead, self._segments = self._segments, []
                self._index.reset(meta.index, meta.term)
                self._cache.clear()
                self._hard_state = state.hard_state
                self._logged_commit = meta.index
            self._remove_segments(dead)

    def compact(self, index: int) -> None:
        """Discard entries up to ``index`` inclusive (covered by the newest snapshot, at or
        below the commit index); whole segments holding only such entries are deleted."""
        with self._writing():
            if index <= self._index.offset_index:
                return
            snapshot = self._written.snapshot
            if snapshot is None or index > snapshot.index:
                raise ValueError(f"compact to {index} is not covered by a snapshot")
            if index > self._hard_state.commit:
                raise ValueError(f"compact to {index} is past the commit index")
            if index < self._index.last_index():
                keep_seq = self._index.seq_of(index + 1)
            else:
                keep_seq = self._segments[-1].seq
            term = self._index.term(index)
            self._sync_and_write_state(replace(
                self._written, offset_index=index, offset_term=term, first_segment_seq=keep_seq
            ))
            with self._lock:
                self._index.compact(index)
                self._cache.drop_through(index)
                dead = [segment for segment in self._segments if segment.seq < keep_seq]
                self._segments = [seg for seg in self._segments if seg.seq >= keep_seq]
            self._remove_segments(dead)

    def close(self) -> None:
        """Sync (unless the store failed) and release the directory."""
        with self._writer:
            if self._closed:
                return
            try:
                if self._failure is None:
                    self.sync()
            finally:
                self._closed = True
                with self._lock:
                    for segment in self._segments:
                        segment.close()
                os.close(self._dir_fd)
                os.close(self._lock_fd)

    def __enter__(self) -> RaftLogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"raft log {self.directory} is closed")
        if self._failure is not None:
            raise StorageError(f"raft log {self.directory} failed earlier: {self._failure}")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Serialise writers; any StorageError fails the store for good (F14)."""
        with self._writer:
            self._check_usable()
            try:
                yield
            except StorageError as exc:
                if not isinstance(exc, CompactedError | UnavailableError):
                    self._failure = self._failure or exc.message
                    logger.error("raft log %s failed: %s", self.directory, exc.message)
                raise

    def _active_segment(self, room_bytes: int) -> Segment:
        """The segment to write ``room_bytes`` into, rolling over to a new one when the
        newest is full (a record larger than a segment gets a segment of its own)."""
        active = self._segments[-1] if self._segments else None
        if active is not None and (active.size_bytes + room_bytes <= self.segment_bytes_max
                                   or active.size_bytes == SEGMENT_HEADER_BYTES):
            return active
        if active is not None and active.dirty:
            # A full segment is made durable before the next one gets data, so after any
            # crash only the last segment can hold a torn record: damage anywhere else is
            # never a crash artefact. Costs one fdatasync per segment_bytes_max written.
            fsio.fdatasync(active.fd, active.path)
            active.dirty = False
        segment = create_segment(self.directory, self._next_seq)
        self._dir_dirty = True
        with self._lock:
            self._segments.append(segment)
            self._next_seq += 1
        return segment

    def _write_records(self, records: list[bytes]) -> list[tuple[Segment, int]]:
        """Write records in order, rolling segments as needed; (segment, offset) of each."""
        placed: list[tuple[Segment, int]] = []
        position = 0
        while position < len(records):
            segment = self._active_segment(len(records[position]))
            start, end = segment.size_bytes, segment.size_bytes
            batch_end = position
            while batch_end < len(records) and (
                batch_end == position
                or end + len(records[batch_end]) <= self.segment_bytes_max
            ):
                placed.append((segment, end))
                end += len(records[batch_end])
                batch_end += 1
            fsio.pwrite_all(segment.fd, b"".join(records[position:batch_end]), start,
                            segment.path)
            segment.size_bytes = end
            segment.dirty = True
            position = batch_end
        return placed

    def _write_entries(self, entries: list[Entry]) -> None:
        for entry in entries:
            if len(entry.data) > ENTRY_DATA_BYTES_MAX:
                raise ValueError(f"entry {entry.index} has {len(entry.data)} bytes of data, "
                                 f"more than the log's limit of {ENTRY_DATA_BYTES_MAX}")
        records = [encode_entry(entry) for entry in entries]
        placed = self._write_records(records)
        terms = [entry.term for entry in entries]
        seqs = [segment.seq for segment, _ in placed]
        offsets = [offset for _, offset in placed]
        sizes = [len(record) for record in records]
        with self._lock:
            self._index.extend(entries[0].index, terms, seqs, offsets, sizes)
            self._cache.put_many(entries)

    def _sync_segments(self) -> None:
        for segment in self._segments:
            if segment.dirty:
                fsio.fdatasync(segment.fd, segment.path)
                segment.dirty = False
        if self._dir_dirty:
            fsio.fsync_dir(self._dir_fd, self.directory)
            self._dir_dirty = False

    def _write_state(self, state: LogState) -> None:
        fsio.atomic_write(self.directory / STATE_FILE, encode_state(state), self._dir_fd)
        with self._lock:
            self._written = state

    def _sync_and_write_state(self, state: LogState) -> None:
        """Sync the segments first, so the state file never names a commit index whose
        entries are not durable, then replace the state file (with the current hard
        state)."""
        self._sync_segments()
        self._write_state(replace(state, hard_state=self._hard_state))

    def _remove_segments(self, dead: list[Segment]) -> None:
        for segment in dead:
            segment.close()
            try:
                os.unlink(segment.path)
            except OSError as exc:
                raise StorageError(
                    f"removing {segment.path} failed: {exc.strerror or exc}"
                ) from exc
        if dead:
            fsio.fsync_dir(self._dir_fd, self.directory)
