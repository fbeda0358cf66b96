"""The receiving side of a snapshot transfer: durable, resumable, verified.

A receive lives in its own directory (``.recv-<id>``) holding:

* ``RECEIVING``: the SnapshotMeta announced by the leader (replaced atomically);
* ``stream.part``: the stream bytes received so far (manifest + files, see manifest.py);
* ``progress``: one 16-byte record per accepted chunk -- end offset u64, crc32c u32 of
  the chunk, crc32c u32 of the 12 bytes before.

``write`` returns only once the chunk and its progress record are fdatasynced, so an
acknowledged chunk survives a crash. On resume, the chunks are checked against their
CRCs and the receive continues after the last intact one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
from pathlib import Path
from typing import Final

import crc32c

from edgelite.errors import StorageCorruptionError, StorageError
from edgelite.raft.types import ConfState, SnapshotMeta
from edgelite.storage.raftlog import fsio
from edgelite.storage.raftlog.manifest import (
    MANIFEST_HEADER_BYTES,
    Manifest,
    decode_manifest,
    manifest_length,
)

__all__ = ["Receive"]

logger = logging.getLogger(__name__)

_META_FILE: Final = "RECEIVING"
_STREAM_FILE: Final = "stream.part"
_PROGRESS_FILE: Final = "progress"
_PROGRESS = struct.Struct("<QII")
_META_HEADER = struct.Struct("<II")
_COPY_BYTES: Final = 1 << 20


def _encode_meta(meta: SnapshotMeta) -> bytes:
    body = json.dumps({
        "index": meta.index, "term": meta.term, "voters": sorted(meta.conf_state.voters),
        "learners": sorted(meta.conf_state.learners), "size_bytes": meta.size_bytes,
        "id": meta.id,
    }, sort_keys=True).encode("utf-8")
    return _META_HEADER.pack(len(body), crc32c.crc32c(body)) + body


def _decode_meta(data: bytes, where: Path) -> SnapshotMeta | None:
    """The meta, or None if the file is damaged (the receive then starts over)."""
    if len(data) < _META_HEADER.size:
        return None
    length, crc = _META_HEADER.unpack_from(data)
    body = data[_META_HEADER.size :]
    if length != len(body) or crc != crc32c.crc32c(body):
        logger.warning("snapshot receive %s: damaged %s, starting over", where, _META_FILE)
        return None
    try:
        value = json.loads(body)
        conf = ConfState(frozenset(value["voters"]), frozenset(value["learners"]))
        return SnapshotMeta(value["index"], value["term"], conf, value["size_bytes"],
                            value["id"])
    except (KeyError, TypeError, ValueError):
        logger.warning("snapshot receive %s: invalid %s, starting over", where, _META_FILE)
        return None


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"opening {path} failed: {exc.strerror or exc}") from exc


def _truncate(fd: int, size: int, path: Path) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError as exc:
        raise StorageError(f"truncating {path} failed: {exc.strerror or exc}") from exc
    fsio.fdatasync(fd, path)


class Receive:
    """One snapshot being received into ``directory``.

    Invariants: ``ends`` are the chunk boundaries accepted so far, increasing;
    ``received_bytes == ends[-1]`` (0 when empty) and equals the stream file's size.
    """

    def __init__(self, directory: Path, meta: SnapshotMeta) -> None:
        self.directory = directory
        self.meta = meta
        self._stream_path = directory / _STREAM_FILE
        self._progress_path = directory / _PROGRESS_FILE
        self._stream_fd = _open(self._stream_path)
        self._progress_fd = _open(self._progress_path)
        self.ends: list[int] = []
        self._resume()

    @property
    def received_bytes(self) -> int:
        return self.ends[-1] if self.ends else 0

    @classmethod
    def begin(cls, directory: Path, meta: SnapshotMeta, parent_fd: int) -> Receive:
        """Resume the receive of ``meta`` in ``directory``, or start it afresh (also when
        the directory holds a receive of different metadata)."""
        meta_path = directory / _META_FILE
        if directory.exists():
            old = _decode_meta(fsio.read_file(meta_path), meta_path) \
                if meta_path.exists() else None
            if old == meta:
                return cls(directory, meta)
            shutil.rmtree(directory)
        try:
            directory.mkdir()
        except OSError as exc:
            raise StorageError(f"creating {directory} failed: {exc.strerror or exc}") from exc
        fsio.fsync_dir(parent_fd, directory.parent)
        dir_fd = fsio.open_dir(directory)
        try:
            fsio.atomic_write(meta_path, _encode_meta(meta), dir_fd)
        finally:
            os.close(dir_fd)
        return cls(directory, meta)

    def _resume(self) -> None:
        """Keep the chunks whose progress record and bytes are intact; drop the rest."""
        progress = fsio.read_file(self._progress_path)
        stream = fsio.read_file(self._stream_path)
        start = 0
        for position in range(0, len(progress) - _PROGRESS.size + 1, _PROGRESS.size):
            end, chunk_crc, record_crc = _PROGRESS.unpack_from(progress, position)
            if record_crc != crc32c.crc32c(progress[position : position + 12]):
                break
            if end <= start or end > len(stream) or end > self.meta.size_bytes:
                break
            if chunk_crc != crc32c.crc32c(stream[start:end]):
                break
            self.ends.append(end)
            start = end
        if len(progress) != len(self.ends) * _PROGRESS.size or len(stream) != start:
            logger.info("snapshot receive %s resumes at byte %d", self.meta.id, start)
            _truncate(self._progress_fd, len(self.ends) * _PROGRESS.size, self._progress_path)
            _truncate(self._stream_fd, start, self._stream_path)

    def write(self, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset``: the end of what was received (append), or an
        earlier chunk boundary such as 0 (the sender started over). Durable on return."""
        if offset != self.received_bytes:
            if offset != 0 and offset not in self.ends:
                raise ValueError(
                    f"snapshot {self.meta.id}: chunk at {offset}, but {self.received_bytes} "
                    "bytes are received and that is not a chunk boundary"
                )
            keep = self.ends.index(offset) + 1 if offset else 0
            del self.ends[keep:]
            _truncate(self._progress_fd, keep * _PROGRESS.size, self._progress_path)
            _truncate(self._stream_fd, offset, self._stream_path)
        end = offset + len(data)
        if not data or end > self.meta.size_bytes:
            raise ValueError(f"snapshot {self.meta.id}: chunk [{offset}, {end}) is empty or "
                             f"past its size {self.meta.size_bytes}")
        fsio.pwrite_all(self._stream_fd, data, offset, self._stream_path)
        fsio.fdatasync(self._stream_fd, self._stream_path)
        head = struct.pack("<QI", end, crc32c.crc32c(data))
        record = head + struct.pack("<I", crc32c.crc32c(head))
        fsio.pwrite_all(self._progress_fd, record, len(self.ends) * _PROGRESS.size,
                        self._progress_path)
        fsio.fdatasync(self._progress_fd, self._progress_path)
        self.ends.append(end)

    def _read_manifest(self) -> Manifest:
        where = f"received snapshot {self.meta.id}"
        head = fsio.pread_exact(self._stream_fd, MANIFEST_HEADER_BYTES, 0, self._stream_path)
        length = manifest_length(head, where)
        manifest = decode_manifest(
            fsio.pread_exact(self._stream_fd, length, 0, self._stream_path), where)
        announced = self.meta
        if (manifest.meta != announced or manifest.stream_bytes != announced.size_bytes):
            raise StorageCorruptionError(
                f"{where}: manifest describes {manifest.meta} ({manifest.stream_bytes} bytes), "
                f"the leader announced {announced}"
            )
        return manifest

    def split(self) -> Manifest:
        """Write the files out of the complete stream, verifying each size and CRC32C
        (StorageCorruptionError names the first that differs); remove the part files."""
        if self.received_bytes != self.meta.size_bytes:
            raise ValueError(f"snapshot {self.meta.id}: {self.received_bytes} of "
                             f"{self.meta.size_bytes} bytes received")
        manifest = self._read_manifest()
        position = len(manifest.encoded)
        for item in manifest.files:
            path = self.directory / item.name
            crc = self._copy_out(position, item.size_bytes, path)
            if crc != item.crc32c:
                raise StorageCorruptionError(
                    f"received snapshot {self.meta.id}: file {item.name} has crc32c "
                    f"{crc:#010x}, manifest says {item.crc32c:#010x}"
                )
            position += item.size_bytes
        self.close()
        for name in (_STREAM_FILE, _PROGRESS_FILE, _META_FILE):
            os.unlink(self.directory / name)
        return manifest

    def _copy_out(self, start: int, size: int, path: Path) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        crc = 0
        try:
            done = 0
            while done < size:
                piece = fsio.pread_exact(self._stream_fd, min(_COPY_BYTES, size - done),
                                         start + done, self._stream_path)
                crc = crc32c.crc32c(piece, crc)
                fsio.pwrite_all(fd, piece, done, path)
                done += len(piece)
            fsio.fdatasync(fd, path)
        finally:
            os.close(fd)
        return crc

    def close(self) -> None:
        for fd in (self._stream_fd, self._progress_fd):
            if fd >= 0:
                os.close(fd)
        self._stream_fd = self._progress_fd = -1
