"""Snapshot manifests and the transfer stream they head.

A snapshot is a directory of files plus ``MANIFEST``: the SnapshotMeta (without
``size_bytes``, which the manifest itself determines) and, per file, its name, size and
CRC32C. The bytes a leader streams to a follower are the manifest followed by the files
in manifest order, so a receiver can rebuild and verify the directory from the stream
alone, and ``SnapshotMeta.size_bytes`` is the stream's length.

Manifest layout: magic ``EDGSNAP1`` | body length u32 | crc32c u32 of the body | body
(UTF-8 JSON).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Final

import crc32c

from edgelite.errors import StorageCorruptionError
from edgelite.raft.types import ConfState, SnapshotMeta

__all__ = [
    "MANIFEST_HEADER_BYTES",
    "MANIFEST_NAME",
    "Manifest",
    "SnapshotFile",
    "check_file_name",
    "check_snapshot_id",
    "decode_manifest",
    "encode_manifest",
    "manifest_length",
]

MANIFEST_NAME: Final = "MANIFEST"
_MAGIC: Final = b"EDGSNAP1"
_HEADER = struct.Struct("<8sII")
MANIFEST_HEADER_BYTES: Final = _HEADER.size
_VERSION: Final = 1
_MANIFEST_BODY_BYTES_MAX: Final = 16 << 20
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def check_snapshot_id(snapshot_id: str) -> str:
    """Ids name directories, so they are restricted to a safe alphabet."""
    if not _SAFE_NAME.match(snapshot_id):
        raise ValueError(f"snapshot id {snapshot_id!r} is not [A-Za-z0-9._@-]{{1,128}}")
    return snapshot_id


# Names the store itself uses inside snapshot and receive directories.
_RESERVED: Final = frozenset({MANIFEST_NAME, "MANIFEST.tmp", "RECEIVING", "RECEIVING.tmp",
                              "stream.part", "progress", "LOCK"})


def check_file_name(name: str) -> str:
    if not _SAFE_NAME.match(name) or name in _RESERVED:
        raise ValueError(f"snapshot file name {name!r} is not allowed")
    return name


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    name: str
    size_bytes: int
    crc32c: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """``meta.size_bytes`` equals ``stream_bytes`` (manifest + every file)."""

    meta: SnapshotMeta
    files: tuple[SnapshotFile, ...]
    encoded: bytes

    @property
    def stream_bytes(self) -> int:
        return len(self.encoded) + sum(f.size_bytes for f in self.files)


def _body(meta: SnapshotMeta, files: tuple[SnapshotFile, ...]) -> bytes:
    value = {
        "version": _VERSION,
        "index": meta.index,
        "term": meta.term,
        "voters": sorted(meta.conf_state.voters),
        "learners": sorted(meta.conf_state.learners),
        "id": meta.id,
        "files": [{"name": f.name, "size": f.size_bytes, "crc32c": f.crc32c} for f in files],
    }
    return json.dumps(value, sort_keys=True).encode("utf-8")


def encode_manifest(meta: SnapshotMeta, files: tuple[SnapshotFile, ...]) -> Manifest:
    """The manifest of ``files``; the returned meta carries the stream's size."""
    body = _body(meta, files)
    encoded = _HEADER.pack(_MAGIC, len(body), crc32c.crc32c(body)) + body
    total = len(encoded) + sum(f.size_bytes for f in files)
    final = SnapshotMeta(meta.index, meta.term, meta.conf_state, total, meta.id)
    return Manifest(final, files, encoded)


def manifest_length(head: bytes, where: str) -> int:
    """Total manifest length from its first ``MANIFEST_HEADER_BYTES`` bytes."""
    magic, length, _ = _HEADER.unpack_from(head)
    if magic != _MAGIC or length > _MANIFEST_BODY_BYTES_MAX:
        raise StorageCorruptionError(f"{where}: not a snapshot manifest (magic {magic!r})")
    return int(_HEADER.size + length)


def decode_manifest(data: bytes, where: str) -> Manifest:
    """Parse a whole manifest; damage raises StorageCorruptionError naming ``where``."""
    if len(data) < _HEADER.size:
        raise StorageCorruptionError(f"{where}: manifest of {len(data)} bytes is too short")
    length = manifest_length(data, where)
    body = data[_HEADER.size : length]
    if len(data) != length or _HEADER.unpack_from(data)[2] != crc32c.crc32c(body):
        raise StorageCorruptionError(f"{where}: manifest fails its checksum")
    try:
        value = json.loads(body)
        if value["version"] != _VERSION:
            raise StorageCorruptionError(f"{where}: manifest version {value['version']}")
        files = tuple(SnapshotFile(check_file_name(f["name"]), int(f["size"]),
                                   int(f["crc32c"])) for f in value["files"])
        if len({f.name for f in files}) != len(files):
            raise ValueError("a file name appears twice")
        conf = ConfState(frozenset(value["voters"]), frozenset(value["learners"]))
        meta = SnapshotMeta(value["index"], value["term"], conf, 0, value["id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageCorruptionError(f"{where}: invalid manifest: {exc}") from exc
    manifest = encode_manifest(meta, files)
    if manifest.encoded != data:
        raise StorageCorruptionError(f"{where}: manifest is not in canonical form")
    return manifest
