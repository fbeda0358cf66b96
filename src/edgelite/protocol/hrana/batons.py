"""Batons: unforgeable tokens naming a Hrana HTTP stream and its request sequence number.

A baton is URL-safe base64 (no padding) of::

    version (1 byte) | stream_id (8, big endian) | seq (8) | len(node_id) (1) | node_id
    | HMAC-SHA256(key, everything before) (32)

The MAC makes batons unforgeable without the key; the sequence number makes each one
single-use (``StreamTable`` accepts only the current one); the node id lets a cluster
route a baton to the node that holds its stream. Clients treat batons as opaque.

The key is injected. A per-process random key makes every baton invalid after a
restart (as in sqld). A key shared by a cluster lets every node verify every baton; the
stream ids of a restarted node must then not repeat (``StreamTable(first_stream_id=...)``).
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import hmac
import re
import struct
from typing import Final

from edgelite.errors import BatonError, ConfigError

__all__ = [
    "BATON_CHARS_MAX",
    "INVALID_BATON_MESSAGE",
    "KEY_BYTES_MIN",
    "USED_BATON_MESSAGE",
    "BatonCodec",
    "BatonFields",
    "baton_node_id",
]

INVALID_BATON_MESSAGE: Final = "Received an invalid baton"
USED_BATON_MESSAGE: Final = "Received a baton that has already been used"
KEY_BYTES_MIN: Final = 16
NODE_ID_BYTES_MAX: Final = 255
BATON_CHARS_MAX: Final = 512

_VERSION: Final = 1
_HEADER: Final = struct.Struct(">BQQB")
_MAC_BYTES: Final = 32
_U64_MAX: Final = 2**64 - 1
_URLSAFE_BASE64_RE: Final = re.compile(r"[A-Za-z0-9_-]*")


@dataclasses.dataclass(frozen=True, slots=True)
class BatonFields:
    """What a genuine baton says: which stream, which request of it, which node."""

    stream_id: int
    seq: int
    node_id: str


class BatonCodec:
    """Issues and checks batons with one HMAC key. Stateless; see ``StreamTable``."""

    __slots__ = ("_key", "_node_bytes", "node_id")

    def __init__(self, key: bytes, node_id: str = "") -> None:
        if len(key) < KEY_BYTES_MIN:
            raise ConfigError(f"baton key has {len(key)} bytes; at least {KEY_BYTES_MIN} needed")
        node_bytes = node_id.encode("utf-8")
        if len(node_bytes) > NODE_ID_BYTES_MAX:
            raise ConfigError(f"node id {node_id!r} is longer than {NODE_ID_BYTES_MAX} bytes")
        self._key = bytes(key)
        self._node_bytes = node_bytes
        self.node_id = node_id

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def issue(self, stream_id: int, seq: int) -> str:
        """A baton for request number ``seq`` of stream ``stream_id`` on this node."""
        assert 0 <= stream_id <= _U64_MAX and 0 <= seq <= _U64_MAX, (stream_id, seq)
        body = _HEADER.pack(_VERSION, stream_id, seq, len(self._node_bytes)) + self._node_bytes
        token = binascii.b2a_base64(body + self._mac(body), newline=False)
        return token.translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")

    def parse(self, baton: object) -> BatonFields:
        """The fields of a genuine baton; ``BatonError`` for anything forged or garbled."""
        raw = _unbase64(baton)
        if raw is None or len(raw) < _HEADER.size + _MAC_BYTES:
            raise BatonError(INVALID_BATON_MESSAGE)
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise BatonError(INVALID_BATON_MESSAGE)
        version, stream_id, seq, node_length = _HEADER.unpack_from(body)
        node_bytes = body[_HEADER.size :]
        # A valid MAC over a malformed body means a future format or a key shared with
        # something else: refuse it the same way.
        if version != _VERSION or len(node_bytes) != node_length:
            raise BatonError(INVALID_BATON_MESSAGE)
        try:
            node_id = node_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise BatonError(INVALID_BATON_MESSAGE) from None
        return BatonFields(stream_id, seq, node_id)


def baton_node_id(baton: object) -> str | None:
    """The node a baton says it belongs to, *unverified* (only that node holds the key).

    A cluster uses it to route a request to the node that holds the stream, which then
    verifies the baton. ``None`` if the baton is not even shaped like one.
    """
    raw = _unbase64(baton)
    if raw is None or len(raw) < _HEADER.size + _MAC_BYTES:
        return None
    body = raw[:-_MAC_BYTES]
    version, _stream_id, _seq, node_length = _HEADER.unpack_from(body)
    node_bytes = body[_HEADER.size :]
    if version != _VERSION or len(node_bytes) != node_length:
        return None
    try:
        return node_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return None


_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")


def _unbase64(baton: object) -> bytes | None:
    if not isinstance(baton, str) or not 0 < len(baton) <= BATON_CHARS_MAX:
        return None
    if len(baton) % 4 == 1 or _URLSAFE_BASE64_RE.fullmatch(baton) is None:
        return None
    padded = baton.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(baton) % 4)
    try:
        return binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        return None
