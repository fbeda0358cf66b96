"""SnapshotStore: snapshot directories with checksummed manifests, chunked reads for the
leader, resumable verified receives for followers, and retention.

Layout under the root directory::

    snap-<id>/      a finished snapshot: its files + MANIFEST (see manifest.py)
    .build-<id>/    being written by a SnapshotWriter (removed at open: never finished)
    .recv-<id>/     being received (kept at open: receives resume)
    .trash-<id>/    being deleted (removed at open)
    LOCK            held (flock) by the one process using the store

A snapshot appears only by renaming a complete, fsynced directory to ``snap-<id>`` and
then fsyncing the root, so ``snap-*`` directories are always whole.

Threads: writes (create/finalize, receive, delete, prune) from one thread at a time;
``read_chunk``, ``open``, ``latest`` from any thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import crc32c

from edgelite.errors import StorageCorruptionError, StorageError
from edgelite.raft.types import SnapshotMeta
from edgelite.storage.raftlog import fsio
from edgelite.storage.raftlog.manifest import (
    MANIFEST_NAME,
    Manifest,
    SnapshotFile,
    check_file_name,
    check_snapshot_id,
    decode_manifest,
    encode_manifest,
)
from edgelite.storage.raftlog.receive import Receive

__all__ = ["Snapshot", "SnapshotStore", "SnapshotWriter"]

logger = logging.getLogger(__name__)

_FINAL, _BUILD, _RECV, _TRASH = "snap-", ".build-", ".recv-", ".trash-"
_LOCK = "LOCK"
_CRC_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A finished snapshot: ``path(name)`` is where each of its files is."""

    meta: SnapshotMeta
    directory: Path
    files: tuple[SnapshotFile, ...]

    def path(self, name: str) -> Path:
        if name not in {f.name for f in self.files}:
            raise KeyError(f"snapshot {self.meta.id} has no file {name!r}")
        return self.directory / name


def _file_crc(path: Path) -> tuple[int, int]:
    """(size, crc32c) of a file, fsyncing it on the way (it is about to be relied on)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise StorageError(f"opening {path} failed: {exc.strerror or exc}") from exc
    try:
        crc, size = 0, 0
        while piece := os.read(fd, _CRC_BYTES):
            crc = crc32c.crc32c(piece, crc)
            size += len(piece)
        fsio.fdatasync(fd, path)
        return size, crc
    finally:
        os.close(fd)


class SnapshotWriter:
    """Fills a new snapshot: put files at ``path(name)`` (e.g. as an SQLite backup
    target) or use ``add_bytes``/``add_file``; then ``finalize()``. Used as a context
    manager, an exception aborts it."""

    def __init__(self, store: SnapshotStore, meta: SnapshotMeta, directory: Path) -> None:
        self.meta = meta
        self.directory = directory
        self._store = store
        self._names: list[str] = []
        self._done = False

    def path(self, name: str) -> Path:
        check_file_name(name)
        if name not in self._names:
            self._names.append(name)
        return self.directory / name

    def add_bytes(self, name: str, data: bytes) -> None:
        self.path(name).write_bytes(data)

    def add_file(self, name: str, source: Path) -> None:
        shutil.copyfile(source, self.path(name))

    def finalize(self) -> SnapshotMeta:
        """Checksum and fsync every file, write the manifest, and publish the snapshot
        atomically. Returns the meta with ``size_bytes`` set (the stream's length)."""
        assert not self._done, "finalize or abort was already called"
        files = []
        for name in self._names:
            size, crc = _file_crc(self.directory / name)
            files.append(SnapshotFile(name, size, crc))
        manifest = encode_manifest(self.meta, tuple(files))
        self._done = True
        return self._store._publish(self.directory, manifest)

    def abort(self) -> None:
        if not self._done:
            self._done = True
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()


class SnapshotStore:
    """Snapshots under ``root`` (see the module docstring); keeps the newest
    ``retain_count`` on ``prune``."""

    def __init__(self, root: Path, *, retain_count: int = 2) -> None:
        """Open (creating it) the store under ``root``; leftovers of unfinished writes or
        deletions are removed; a damaged manifest of a finished snapshot raises
        StorageCorruptionError."""
        if retain_count < 1:
            raise ValueError(f"retain_count {retain_count} must be at least 1")
        self.root = Path(root)
        self.retain_count = retain_count
        self._lock = threading.Lock()
        self._snapshots: dict[str, Manifest] = {}
        self._receives: dict[str, Receive] = {}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"creating {self.root} failed: {exc.strerror or exc}") from exc
        self._lock_fd = fsio.lock_directory(self.root / _LOCK)
        self._root_fd = fsio.open_dir(self.root)
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        removed = False
        for entry in sorted(self.root.iterdir()):
            name = entry.name
            if name.startswith((_BUILD, _TRASH)):
                logger.warning("snapshot store: removing unfinished %s", entry)
                shutil.rmtree(entry)
                removed = True
            elif name.startswith(_FINAL):
                where = str(entry / MANIFEST_NAME)
                manifest = decode_manifest(fsio.read_file(entry / MANIFEST_NAME), where)
                if _FINAL + manifest.meta.id != name:
                    raise StorageCorruptionError(f"{where}: describes snapshot "
                                                 f"{manifest.meta.id!r}")
                self._snapshots[manifest.meta.id] = manifest
        if removed:
            fsio.fsync_dir(self._root_fd, self.root)

    def close(self) -> None:
        with self._lock:
            for receive in self._receives.values():
                receive.close()
            self._receives.clear()
            if self._root_fd >= 0:
                os.close(self._root_fd)
                os.close(self._lock_fd)
                self._root_fd = self._lock_fd = -1

    # -- creating ------------------------------------------------------------------------

    def create(self, meta: SnapshotMeta) -> SnapshotWriter:
        """A writer for a new snapshot with ``meta`` (its ``size_bytes`` is ignored)."""
        directory = self.root / (_BUILD + check_snapshot_id(meta.id))
        with self._lock:
            if meta.id in self._snapshots:
                raise ValueError(f"snapshot {meta.id!r} already exists")
        if directory.exists():
            shutil.rmtree(directory)
        try:
            directory.mkdir()
        except OSError as exc:
            raise StorageError(f"creating {directory} failed: {exc.strerror or exc}") from exc
        return SnapshotWriter(self, meta, directory)

    def _publish(self, directory: Path, manifest: Manifest) -> SnapshotMeta:
        """Write MANIFEST into ``directory``, fsync it, rename it to ``snap-<id>``, fsync
        the root: the snapshot exists, whole, from that rename on."""
        dir_fd = fsio.open_dir(directory)
        try:
            fsio.atomic_write(directory / MANIFEST_NAME, manifest.encoded, dir_fd)
        finally:
            os.close(dir_fd)
        final = self.root / (_FINAL + manifest.meta.id)
        try:
            os.rename(directory, final)
        except OSError as exc:
            raise StorageError(f"publishing {final} failed: {exc.strerror or exc}") from exc
        fsio.fsync_dir(self._root_fd, self.root)
        with self._lock:
            self._snapshots[manifest.meta.id] = manifest
        logger.info("snapshot %s published (index %d, %d bytes)", manifest.meta.id,
                    manifest.meta.index, manifest.meta.size_bytes)
        return manifest.meta

    # -- reading -------------------------------------------------------------------------

    def _manifest(self, snapshot_id: str) -> Manifest:
        with self._lock:
            manifest = self._snapshots.get(snapshot_id)
        if manifest is None:
            raise StorageError(f"snapshot {snapshot_id!r} not found")
        return manifest

    def open(self, snapshot_id: str) -> Snapshot:
        """A finished snapshot (StorageError if there is none with that id)."""
        manifest = self._manifest(snapshot_id)
        return Snapshot(manifest.meta, self.root / (_FINAL + snapshot_id), manifest.files)

    def latest(self) -> SnapshotMeta | None:
        """The snapshot with the highest (index, term), or None."""
        with self._lock:
            metas = [m.meta for m in self._snapshots.values()]
        return max(metas, key=lambda meta: (meta.index, meta.term), default=None)

    def snapshots(self) -> list[SnapshotMeta]:
        """Every finished snapshot, oldest first."""
        with self._lock:
            metas = [m.meta for m in self._snapshots.values()]
        return sorted(metas, key=lambda meta: (meta.index, meta.term))

    def read_chunk(self, snapshot_id: str, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of the snapshot's stream (manifest, then
        the files in manifest order)."""
        manifest = self._manifest(snapshot_id)
        if offset < 0 or length < 0 or offset + length > manifest.stream_bytes:
            raise ValueError(f"snapshot {snapshot_id}: [{offset}, {offset + length}) is "
                             f"outside its {manifest.stream_bytes} bytes")
        parts: list[bytes] = []
        end = offset + length
        position = len(manifest.encoded)
        if offset < position:
            parts.append(manifest.encoded[offset : min(end, position)])
        directory = self.root / (_FINAL + snapshot_id)
        for item in manifest.files:
            lo, hi = max(offset, position), min(end, position + item.size_bytes)
            if lo < hi:
                parts.append(_read_range(directory / item.name, lo - position, hi - lo))
            position += item.size_bytes
        return b"".join(parts)

    def verify(self, snapshot_id: str) -> None:
        """Re-read every file; StorageCorruptionError names the first one that differs."""
        snapshot = self.open(snapshot_id)
        for item in snapshot.files:
            size, crc = _file_crc(snapshot.directory / item.name)
            if (size, crc) != (item.size_bytes, item.crc32c):
                raise StorageCorruptionError(
                    f"snapshot {snapshot_id}: file {item.name} is {size} bytes with crc32c "
                    f"{crc:#010x}, manifest says {item.size_bytes} bytes, "
                    f"{item.crc32c:#010x}"
                )

    # -- receiving -----------------------------------------------------------------------

    def begin_receive(self, meta: SnapshotMeta) -> int:
        """Start, or resume, receiving ``meta``; returns the bytes already received."""
        check_snapshot_id(meta.id)
        with self._lock:
            receive = self._receives.get(meta.id)
        if receive is not None and receive.meta == meta:
            return receive.received_bytes
        if receive is not None:
            receive.close()
        receive = Receive.begin(self.root / (_RECV + meta.id), meta, self._root_fd)
        with self._lock:
            self._receives[meta.id] = receive
        return receive.received_bytes

    def _receive(self, snapshot_id: str) -> Receive:
        with self._lock:
            receive = self._receives.get(snapshot_id)
        if receive is None:
            raise ValueError(f"snapshot {snapshot_id!r} is not being received")
        return receive

    def received_bytes(self, snapshot_id: str) -> int:
        return self._receive(snapshot_id).received_bytes

    def write_chunk(self, snapshot_id: str, offset: int, data: bytes) -> None:
        """Store a chunk (durable on return); see ``Receive.write`` for the offsets."""
        self._receive(snapshot_id).write(offset, data)

    def finish_receive(self, snapshot_id: str) -> SnapshotMeta:
        """Verify the complete stream and publish the snapshot. A verification failure
        discards the receive (the next begins at 0) and raises StorageCorruptionError."""
        receive = self._receive(snapshot_id)
        try:
            manifest = receive.split()
        except StorageCorruptionError:
            self._discard_receive(snapshot_id)
            raise
        with self._lock:
            del self._receives[snapshot_id]
            existing = self._snapshots.get(snapshot_id)
        if existing is not None:
            shutil.rmtree(receive.directory)
            if existing.encoded != manifest.encoded:
                raise StorageError(f"snapshot {snapshot_id!r} exists with other content")
            return existing.meta
        return self._publish(receive.directory, manifest)

    def abort_receive(self, snapshot_id: str) -> None:
        self._discard_receive(snapshot_id)

    def _discard_receive(self, snapshot_id: str) -> None:
        with self._lock:
            receive = self._receives.pop(snapshot_id, None)
        if receive is not None:
            receive.close()
            shutil.rmtree(receive.directory, ignore_errors=True)

    # -- removing ------------------------------------------------------------------------

    def delete(self, snapshot_id: str) -> None:
        """Remove a snapshot: renamed away (and the root fsynced) first, so it is never
        seen half deleted."""
        with self._lock:
            if self._snapshots.pop(snapshot_id, None) is None:
                raise StorageError(f"snapshot {snapshot_id!r} not found")
        trash = self.root / (_TRASH + snapshot_id)
        try:
            os.rename(self.root / (_FINAL + snapshot_id), trash)
        except OSError as exc:
            raise StorageError(f"deleting snapshot {snapshot_id} failed: "
                               f"{exc.strerror or exc}") from exc
        fsio.fsync_dir(self._root_fd, self.root)
        shutil.rmtree(trash)

    def prune(self, keep: Collection[str] = ()) -> list[str]:
        """Delete all but the newest ``retain_count`` snapshots and those in ``keep``
        (e.g. being sent to a follower). Returns the deleted ids."""
        newest_first = sorted(self.snapshots(), key=lambda meta: (meta.index, meta.term),
                              reverse=True)
        doomed = [meta.id for meta in newest_first[self.retain_count :]
                  if meta.id not in keep]
        for snapshot_id in doomed:
            self.delete(snapshot_id)
        return doomed


def _read_range(path: Path, offset: int, length: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise StorageError(f"opening {path} failed: {exc.strerror or exc}") from exc
    try:
        return fsio.pread_exact(fd, length, offset, path)
    finally:
        os.close(fd)
