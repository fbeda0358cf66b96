"""File-system primitives with the durability rules of this package.

Every failure becomes an error of the edgelite tree naming the file. A failed
``fsync``/``fdatasync`` is never retried: after a failure Linux may already have marked
the dirty pages clean (they are lost, and a second fsync would "succeed"), so the only
safe answer is to stop and recover from what is on disk (reliability.md F14).
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from edgelite.errors import DiskFullError, StorageError

__all__ = [
    "atomic_write",
    "fdatasync",
    "fsync_dir",
    "lock_directory",
    "open_dir",
    "pread_exact",
    "pwrite_all",
    "read_file",
]


def _io_error(action: str, what: Path | str, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{action} {what}: disk full ({exc.strerror})")
    return StorageError(f"{action} {what} failed: {exc.strerror or exc}")


def fdatasync(fd: int, what: Path | str) -> None:
    """Make the data of ``fd`` (and the size needed to read it) durable, or raise."""
    try:
        os.fdatasync(fd)
    except OSError as exc:
        raise StorageError(
            f"fdatasync of {what} failed ({exc.strerror or exc}); data written since the "
            "last sync may be lost, so the store refuses further work until reopened"
        ) from exc


def fsync_dir(fd: int, what: Path | str) -> None:
    """Make creations, renames and deletions inside the directory open as ``fd`` durable."""
    try:
        os.fsync(fd)
    except OSError as exc:
        raise StorageError(
            f"fsync of directory {what} failed ({exc.strerror or exc}); the store refuses "
            "further work until reopened"
        ) from exc


def open_dir(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _io_error("opening directory", path, exc) from exc


def pwrite_all(fd: int, data: bytes, offset: int, what: Path | str) -> None:
    """Write all of ``data`` at ``offset`` (a short write is continued, not ignored)."""
    view = memoryview(data)
    written = 0
    try:
        while written < len(view):
            written += os.pwrite(fd, view[written:], offset + written)
    except OSError as exc:
        raise _io_error("writing", what, exc) from exc


def pread_exact(fd: int, length: int, offset: int, what: Path | str) -> bytes:
    try:
        data = os.pread(fd, length, offset)
    except OSError as exc:
        raise _io_error("reading", what, exc) from exc
    if len(data) != length:
        raise StorageError(
            f"reading {what}: expected {length} bytes at offset {offset}, got {len(data)}"
        )
    return data


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _io_error("reading", path, exc) from exc


def atomic_write(path: Path, data: bytes, dir_fd: int) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new
    content: write a temporary file, fsync it, rename it over ``path``, fsync the
    directory (``dir_fd`` is the open parent directory)."""
    temp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise _io_error("creating", temp, exc) from exc
    try:
        pwrite_all(fd, data, 0, temp)
        try:
            os.fsync(fd)
        except OSError as exc:
            raise StorageError(f"fsync of {temp} failed ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    try:
        os.replace(temp, path)
    except OSError as exc:
        raise _io_error("renaming", temp, exc) from exc
    fsync_dir(dir_fd, path.parent)


def lock_directory(path: Path) -> int:
    """An exclusive lock held through the open file ``path`` (for as long as the returned
    descriptor is open): two processes writing one log or snapshot directory would
    destroy it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _io_error("opening lock file", path, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StorageError(f"{path.parent} is in use by another process") from exc
    return fd
