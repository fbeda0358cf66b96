"""Shared helpers of the raft log tests: deterministic payloads and small stores."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edgelite.raft.types import Entry, EntryKind
from edgelite.storage.raftlog import RaftLogStore
from edgelite.storage.raftlog.records import SEGMENT_HEADER_BYTES, scan_records
from edgelite.storage.raftlog.segments import list_segments, segment_path

SMALL_SEGMENT_BYTES = 4096


def payload(index: int, term: int, size: int | None = None) -> bytes:
    """Bytes that only entry (index, term) carries; any mix-up or damage shows."""
    seed = hashlib.sha256(f"{index}/{term}".encode()).digest()
    length = size if size is not None else index * 7 % 90
    return (seed * (length // len(seed) + 1))[:length]


def entry(index: int, term: int, size: int | None = None) -> Entry:
    return Entry(term, index, EntryKind.NORMAL, payload(index, term, size))


def entries(first: int, last: int, term: int, size: int | None = None) -> list[Entry]:
    return [entry(index, term, size) for index in range(first, last + 1)]


def check_payloads(found: list[Entry]) -> None:
    for item in found:
        assert item.data == payload(item.index, item.term, len(item.data)), item


def open_store(directory: Path, **kwargs: int) -> RaftLogStore:
    kwargs.setdefault("segment_bytes_max", SMALL_SEGMENT_BYTES)
    return RaftLogStore.open(directory, **kwargs)


def segment_files(directory: Path) -> list[Path]:
    return [segment_path(directory, seq) for seq in list_segments(directory)]


def record_offsets(path: Path) -> list[tuple[int, int]]:
    """(offset, size) of every intact record of a segment file."""
    records, bad = scan_records(path.read_bytes(), SEGMENT_HEADER_BYTES)
    assert bad is None, bad
    return [(record.offset, record.size_bytes) for record in records]


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ (1 << bit)]))


def truncate(path: Path, size: int) -> None:
    os.truncate(path, size)
