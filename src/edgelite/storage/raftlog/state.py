"""The state file: hard state plus the log's metadata, replaced atomically as a whole.

Layout: magic ``EDGRSTA1`` | body length u32 | crc32c u32 of the body | body (UTF-8 JSON).
The file is only ever replaced by ``atomic_write`` (temp, fsync, rename, directory
fsync), so it is never torn: any checksum failure is damage, never a crash artefact.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import crc32c

from edgelite.errors import StorageCorruptionError
from edgelite.raft.types import ConfState, HardState, SnapshotMeta
from edgelite.storage.raftlog import fsio

__all__ = ["LogState", "decode_state", "encode_state", "load_state"]

_MAGIC: Final = b"EDGRSTA1"
_HEADER = struct.Struct("<8sII")
_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class LogState:
    """What the state file holds.

    ``offset_index``/``offset_term``: the compaction point (entries start after it).
    ``first_segment_seq``: segments with a lower seq are dead (compacted away or replaced
    by a snapshot) even if a crash left their files behind.
    ``conf_state``: the configuration at index 0 (used when there is no snapshot).
    """

    hard_state: HardState = field(default_factory=HardState)
    conf_state: ConfState = field(default_factory=ConfState)
    offset_index: int = 0
    offset_term: int = 0
    first_segment_seq: int = 1
    snapshot: SnapshotMeta | None = None


def _conf_json(conf: ConfState) -> dict[str, list[str]]:
    return {"voters": sorted(conf.voters), "learners": sorted(conf.learners)}


def _conf_from(value: dict[str, Any]) -> ConfState:
    return ConfState(frozenset(value["voters"]), frozenset(value["learners"]))


def encode_state(state: LogState) -> bytes:
    snapshot = state.snapshot
    body = {
        "version": _VERSION,
        "term": state.hard_state.term,
        "vote": state.hard_state.vote,
        "commit": state.hard_state.commit,
        "conf": _conf_json(state.conf_state),
        "offset_index": state.offset_index,
        "offset_term": state.offset_term,
        "first_segment_seq": state.first_segment_seq,
        "snapshot": None if snapshot is None else {
            "index": snapshot.index,
            "term": snapshot.term,
            "conf": _conf_json(snapshot.conf_state),
            "size_bytes": snapshot.size_bytes,
            "id": snapshot.id,
        },
    }
    data = json.dumps(body, sort_keys=True).encode("utf-8")
    return _HEADER.pack(_MAGIC, len(data), crc32c.crc32c(data)) + data


def decode_state(data: bytes, path: Path) -> LogState:
    """Parse a state file; any damage raises StorageCorruptionError naming ``path``."""
    if len(data) < _HEADER.size:
        raise StorageCorruptionError(f"state file {path} is {len(data)} bytes, too short")
    magic, length, crc = _HEADER.unpack_from(data)
    body = data[_HEADER.size :]
    if magic != _MAGIC or length != len(body) or crc != crc32c.crc32c(body):
        raise StorageCorruptionError(
            f"state file {path} fails its checksum (magic {magic!r}, length {length}, "
            f"{len(body)} bytes of body)"
        )
    try:
        value = json.loads(body)
        if value["version"] != _VERSION:
            raise StorageCorruptionError(f"state file {path} has version {value['version']}")
        snap = value["snapshot"]
        return LogState(
            hard_state=HardState(value["term"], value["vote"], value["commit"]),
            conf_state=_conf_from(value["conf"]),
            offset_index=value["offset_index"],
            offset_term=value["offset_term"],
            first_segment_seq=value["first_segment_seq"],
            snapshot=None if snap is None else SnapshotMeta(
                snap["index"], snap["term"], _conf_from(snap["conf"]),
                snap["size_bytes"], snap["id"]
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageCorruptionError(f"state file {path} has invalid content: {exc}") from exc


def load_state(path: Path) -> LogState:
    """The state file at ``path`` (a fresh LogState if there is none yet)."""
    temp = path.with_name(path.name + ".tmp")
    if temp.exists():
        temp.unlink()  # an interrupted atomic_write; the old file is still the truth
    if not path.exists():
        return LogState()
    return decode_state(fsio.read_file(path), path)
