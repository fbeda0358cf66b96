"""Byte layout of log segment files: the segment header and the records after it.

Segment file = ``SEGMENT_HEADER`` then records back to back, nothing else::

    segment header (24 bytes, little endian)
      magic "EDGRLOG1" | format version u32 | segment seq u64 | crc32c u32 of the 20 before

    record = header (12 bytes) + body
      marker u16 = 0xED1E | type u8 | flags u8 = 0 | body length u32 | crc32c u32
      crc32c covers the first 8 header bytes and the body, so a damaged length, type or
      marker fails the check like damaged data does.

    ENTRY body   term u64 | index u64 | kind u8 | data
    COMMIT body  commit index u64

The marker lets recovery look for intact records *after* a damaged one with a fast
``bytes.find`` (a torn tail has none; bit rot in the middle of a file has some).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import crc32c

from edgelite.raft.types import Entry, EntryKind

__all__ = [
    "ENTRY_DATA_BYTES_MAX",
    "ENTRY_FIXED_BYTES",
    "RECORD_HEADER_BYTES",
    "SEGMENT_HEADER_BYTES",
    "BadRecord",
    "RecordType",
    "ScannedRecord",
    "decode_entry",
    "decode_segment_header",
    "encode_commit",
    "encode_entry",
    "encode_segment_header",
    "find_intact_record",
    "scan_records",
]

SEGMENT_MAGIC: Final = b"EDGRLOG1"
FORMAT_VERSION: Final = 1
_SEGMENT_HEADER = struct.Struct("<8sIQI")
SEGMENT_HEADER_BYTES: Final = _SEGMENT_HEADER.size

RECORD_MARKER: Final = 0xED1E
_MARKER_BYTES: Final = struct.pack("<H", RECORD_MARKER)
_RECORD_HEADER = struct.Struct("<HBBII")
RECORD_HEADER_BYTES: Final = _RECORD_HEADER.size
# A bound on one record's body, far above any real entry (the core bounds messages), so
# that a damaged length field is recognised as damage instead of a huge allocation.
RECORD_BODY_BYTES_MAX: Final = 1 << 30

_ENTRY_FIXED = struct.Struct("<QQB")
_COMMIT = struct.Struct("<Q")
# Bytes of an ENTRY record that are not the entry's data.
ENTRY_FIXED_BYTES: Final = RECORD_HEADER_BYTES + _ENTRY_FIXED.size
ENTRY_DATA_BYTES_MAX: Final = RECORD_BODY_BYTES_MAX - _ENTRY_FIXED.size

# Stable codes on disk; never renumber (the enum's own order may change).
_KIND_CODES: Final[dict[EntryKind, int]] = {
    EntryKind.NORMAL: 0,
    EntryKind.NOOP: 1,
    EntryKind.CONF_CHANGE: 2,
}
_CODE_KINDS: Final[dict[int, EntryKind]] = {code: kind for kind, code in _KIND_CODES.items()}


class RecordType:
    ENTRY: Final = 1
    COMMIT: Final = 2


def encode_segment_header(seq: int) -> bytes:
    head = _SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, seq, 0)[:-4]
    return head + struct.pack("<I", crc32c.crc32c(head))


def decode_segment_header(data: bytes) -> int | None:
    """The segment's seq, or None if ``data`` does not start with a valid header."""
    if len(data) < SEGMENT_HEADER_BYTES:
        return None
    magic, version, seq, crc = _SEGMENT_HEADER.unpack_from(data)
    if magic != SEGMENT_MAGIC or version != FORMAT_VERSION:
        return None
    if crc != crc32c.crc32c(data[: SEGMENT_HEADER_BYTES - 4]):
        return None
    return int(seq)


_HEAD = struct.Struct("<HBBI")
_CRC = struct.Struct("<I")


def _frame(record_type: int, body: bytes) -> bytes:
    head = _HEAD.pack(RECORD_MARKER, record_type, 0, len(body))
    crc = crc32c.crc32c(body, crc32c.crc32c(head))
    return head + _CRC.pack(crc) + body


def encode_entry(entry: Entry) -> bytes:
    """One ENTRY record (the hot path of appends: no intermediate body copy)."""
    assert entry.term >= 1 and entry.index >= 1, f"not a real entry: {entry}"
    data = entry.data
    fixed = _ENTRY_FIXED.pack(entry.term, entry.index, _KIND_CODES[entry.kind])
    head = _HEAD.pack(RECORD_MARKER, RecordType.ENTRY, 0, len(fixed) + len(data))
    crc = crc32c.crc32c(data, crc32c.crc32c(fixed, crc32c.crc32c(head)))
    return b"".join((head, _CRC.pack(crc), fixed, data))


def encode_commit(commit: int) -> bytes:
    return _frame(RecordType.COMMIT, _COMMIT.pack(commit))


def decode_entry(record: bytes | memoryview) -> Entry:
    """The entry in a whole ENTRY record (header included) read back from a file whose
    records were checked at open; the checksum is verified again, because the bytes came
    from disk a second time."""
    marker, record_type, _flags, length, crc = _RECORD_HEADER.unpack_from(record)
    body = record[RECORD_HEADER_BYTES:]
    if (
        marker != RECORD_MARKER
        or record_type != RecordType.ENTRY
        or length != len(body)
        or crc != crc32c.crc32c(body, crc32c.crc32c(record[:8]))
    ):
        raise ValueError("record changed on disk since it was checked")
    term, index, code = _ENTRY_FIXED.unpack_from(body)
    return Entry(term, index, _CODE_KINDS[code], bytes(body[_ENTRY_FIXED.size :]))


@dataclass(frozen=True, slots=True)
class ScannedRecord:
    """One intact record found by :func:`scan_records`. For ENTRY records ``value`` is the
    index and ``term`` its term; for COMMIT records ``value`` is the commit index."""

    offset: int
    size_bytes: int
    record_type: int
    value: int
    term: int = 0


@dataclass(frozen=True, slots=True)
class BadRecord:
    """Why scanning stopped at ``offset``.

    ``complete``: the whole record (as its length field says) is inside the data, i.e. it
    is not merely cut short. ``malformed``: the checksum matched but the content is not a
    record we could have written -- never a torn write, always damage or a bug.
    """

    offset: int
    reason: str
    complete: bool
    malformed: bool = False


def _check(data: memoryview, offset: int) -> tuple[int, int, int] | BadRecord:
    """(type, body length, record size) of an intact record at ``offset``, else why not."""
    remaining = len(data) - offset
    if remaining < RECORD_HEADER_BYTES:
        return BadRecord(offset, f"incomplete record header ({remaining} bytes)", False)
    marker, record_type, flags, length, crc = _RECORD_HEADER.unpack_from(data, offset)
    if marker != RECORD_MARKER:
        return BadRecord(offset, f"bad record marker {marker:#06x}", True)
    if length > RECORD_BODY_BYTES_MAX:
        return BadRecord(offset, f"implausible record length {length}", True)
    end = offset + RECORD_HEADER_BYTES + length
    if end > len(data):
        return BadRecord(offset, f"incomplete record ({remaining} of {end - offset} bytes)", False)
    body = data[offset + RECORD_HEADER_BYTES : end]
    if crc != crc32c.crc32c(body, crc32c.crc32c(data[offset : offset + 8])):
        return BadRecord(offset, "record checksum mismatch", True)
    if flags != 0:
        return BadRecord(offset, f"unknown record flags {flags:#x}", True, malformed=True)
    return record_type, length, end - offset


def _decode_body(data: memoryview, offset: int, record_type: int, length: int,
                 size: int) -> ScannedRecord | BadRecord:
    body = offset + RECORD_HEADER_BYTES
    if record_type == RecordType.ENTRY and length >= _ENTRY_FIXED.size:
        term, index, code = _ENTRY_FIXED.unpack_from(data, body)
        if code not in _CODE_KINDS or term < 1 or index < 1:
            return BadRecord(offset, f"malformed entry (term {term}, index {index}, kind "
                                     f"{code})", True, malformed=True)
        return ScannedRecord(offset, size, record_type, index, term)
    if record_type == RecordType.COMMIT and length == _COMMIT.size:
        (commit,) = _COMMIT.unpack_from(data, body)
        return ScannedRecord(offset, size, record_type, commit)
    return BadRecord(offset, f"malformed record of type {record_type} and length {length}",
                     True, malformed=True)


def scan_records(data: bytes, start: int) -> tuple[list[ScannedRecord], BadRecord | None]:
    """Every intact record from ``start`` on, up to the first bad one (or the end)."""
    view = memoryview(data)
    records: list[ScannedRecord] = []
    offset = start
    while offset < len(view):
        checked = _check(view, offset)
        if isinstance(checked, BadRecord):
            return records, checked
        scanned = _decode_body(view, offset, *checked)
        if isinstance(scanned, BadRecord):
            return records, scanned
        records.append(scanned)
        offset += scanned.size_bytes
    return records, None


def find_intact_record(data: bytes, start: int) -> int | None:
    """Offset of the first intact record at or after ``start``, found by its marker."""
    view = memoryview(data)
    position = data.find(_MARKER_BYTES, start)
    while position != -1:
        checked = _check(view, position)
        if not isinstance(checked, BadRecord):
            return position
        position = data.find(_MARKER_BYTES, position + 1)
    return None
