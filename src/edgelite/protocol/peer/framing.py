"""Length-prefixed frames for the node-to-node byte stream.

A frame is a 4-byte big-endian unsigned length followed by exactly that many payload
bytes. The length counts the payload only and is never zero (every peer message encodes
to at least one byte, so a zero length can only be garbage). Both sides enforce
``frame_bytes_max``: the sender refuses to build a larger frame, the receiver rejects
the header of one before buffering any of its payload, so a hostile or broken peer can
make us hold at most ``frame_bytes_max + 3`` bytes per connection.

:class:`FrameDecoder` is incremental and pure: feed it whatever the socket returned and
it returns the frames completed so far.
"""

from __future__ import annotations

import struct
from typing import Final, NoReturn

from edgelite.errors import ProtocolError

__all__ = [
    "FRAME_BYTES_LIMIT",
    "FRAME_HEADER_BYTES",
    "FrameDecoder",
    "encode_frame",
]

_HEADER: Final = struct.Struct(">I")
FRAME_HEADER_BYTES: Final = _HEADER.size
FRAME_BYTES_LIMIT: Final = (1 << 32) - 1  # the largest length the header can carry


def _check_frame_bytes_max(frame_bytes_max: int) -> None:
    if not 1 <= frame_bytes_max <= FRAME_BYTES_LIMIT:
        raise ValueError(
            f"frame_bytes_max must be in [1, {FRAME_BYTES_LIMIT}], got {frame_bytes_max}"
        )


def encode_frame(payload: bytes, frame_bytes_max: int = FRAME_BYTES_LIMIT) -> bytes:
    """Return ``payload`` behind its length header.

    Raises ProtocolError for an empty payload or one longer than ``frame_bytes_max``
    (the receiver would reject it and close the connection).
    """
    size = len(payload)
    if size == 0:
        raise ProtocolError("cannot frame an empty payload")
    if size > frame_bytes_max:
        raise ProtocolError(
            f"frame payload of {size} bytes exceeds frame_bytes_max={frame_bytes_max}"
        )
    return _HEADER.pack(size) + payload


class FrameDecoder:
    """Splits a byte stream into frame payloads.

    Invariants: ``self._buffer`` never holds a complete frame after :meth:`feed`
    returns, and never more than ``FRAME_HEADER_BYTES + frame_bytes_max - 1`` bytes.
    After the first error the decoder is poisoned: every later call raises the same
    error, because the stream has lost its framing and nothing after it can be trusted.
    """

    __slots__ = ("_buffer", "_error", "_frame_bytes_max")

    def __init__(self, frame_bytes_max: int) -> None:
        _check_frame_bytes_max(frame_bytes_max)
        self._frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self._error: str | None = None

    @property
    def frame_bytes_max(self) -> int:
        return self._frame_bytes_max

    @frame_bytes_max.setter
    def frame_bytes_max(self, value: int) -> None:
        # The transport starts a connection with a small limit (unauthenticated peer)
        # and raises it once the handshake succeeded; bytes already buffered stay valid.
        _check_frame_bytes_max(value)
        self._frame_bytes_max = value

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that do not complete a frame yet."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume ``data``; return the payloads of the frames it completed, in order.

        Raises ProtocolError for a zero or oversized length header.
        """
        if self._error is not None:
            raise ProtocolError(self._error)
        if self._buffer:
            self._buffer += data
            view: bytes | bytearray = self._buffer
        else:
            view = bytes(data)  # fast path: parse straight from the chunk, no buffer copy
        frames: list[bytes] = []
        position = 0
        available = len(view)
        while available - position >= FRAME_HEADER_BYTES:
            (size,) = _HEADER.unpack_from(view, position)
            if size == 0 or size > self._frame_bytes_max:
                self._fail(size)
            end = position + FRAME_HEADER_BYTES + size
            if end > available:
                break
            frames.append(bytes(view[position + FRAME_HEADER_BYTES : end]))
            position = end
        if view is self._buffer:
            del self._buffer[:position]
        elif position < available:
            self._buffer += view[position:]
        return frames

    def check_eof(self) -> None:
        """Call when the stream ended: raises ProtocolError if it stopped mid-frame."""
        if self._error is not None:
            raise ProtocolError(self._error)
        if self._buffer:
            raise ProtocolError(
                f"stream ended inside a frame ({len(self._buffer)} bytes of it received)"
            )

    def _fail(self, size: int) -> NoReturn:
        if size == 0:
            self._error = "frame with a zero length header"
        else:
            self._error = (
                f"frame of {size} bytes exceeds frame_bytes_max={self._frame_bytes_max}"
            )
        self._buffer.clear()
        raise ProtocolError(self._error)
