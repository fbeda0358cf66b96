"""Segment files: naming, creation and the open handle the store keeps for each."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from edgelite.errors import StorageError
from edgelite.storage.raftlog import fsio
from edgelite.storage.raftlog.records import SEGMENT_HEADER_BYTES, encode_segment_header

__all__ = ["Segment", "create_segment", "list_segments", "open_segment", "segment_path"]

_NAME = re.compile(r"^([0-9a-f]{16})\.seg$")


def segment_path(directory: Path, seq: int) -> Path:
    return directory / f"{seq:016x}.seg"


def list_segments(directory: Path) -> list[int]:
    """Seqs of the segment files in ``directory``, ascending."""
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise StorageError(f"listing {directory} failed: {exc.strerror or exc}") from exc
    return sorted(int(match.group(1), 16) for name in names if (match := _NAME.match(name)))


@dataclass(slots=True)
class Segment:
    """An open segment file. ``size_bytes`` is where the next record goes; ``dirty``:
    written since its last fdatasync."""

    seq: int
    path: Path
    fd: int
    size_bytes: int
    dirty: bool = False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_segment(directory: Path, seq: int, size_bytes: int) -> Segment:
    path = segment_path(directory, seq)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise StorageError(f"opening segment {path} failed: {exc.strerror or exc}") from exc
    return Segment(seq, path, fd, size_bytes)


def create_segment(directory: Path, seq: int) -> Segment:
    """A new segment holding only its header (not yet durable: the caller syncs the file
    and the directory before relying on it)."""
    path = segment_path(directory, seq)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as exc:
        raise StorageError(f"segment {path} already exists; is another store open?") from exc
    except OSError as exc:
        raise StorageError(f"creating segment {path} failed: {exc.strerror or exc}") from exc
    segment = Segment(seq, path, fd, 0, dirty=True)
    try:
        fsio.pwrite_all(fd, encode_segment_header(seq), 0, path)
    except StorageError:
        segment.close()
        raise
    segment.size_bytes = SEGMENT_HEADER_BYTES
    return segment
