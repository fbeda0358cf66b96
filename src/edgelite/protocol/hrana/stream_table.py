"""The table of open Hrana HTTP streams: baton checks, idle expiry, bounded size.

Pure bookkeeping; the server keeps the SQLite connection of each stream in its own map
keyed by stream id, and passes the time in (``now_s``, seconds of a monotonic clock).

Life of a stream, driven by the server::

    open(now)            -> stream_id           request without baton; stream is BUSY
    resume(baton, now)   -> stream_id           request with baton; stream becomes BUSY
    release(id, now)     -> baton               request done, stream stays; IDLE
    close(id)                                   request closed it, or failed: forgotten
    expire(now)          -> [stream_id, ...]    IDLE too long: the server closes these

Invariants (checked by ``check_invariants``):

- at most ``streams_max`` open streams and ``expired_max`` remembered expired ids;
- an id is never both open and remembered as expired; ids are never reused;
- only the baton issued by the latest ``release`` of a stream is accepted, once, and
  never while a request on that stream is running (BUSY);
- a BUSY stream never expires; an IDLE one expires ``idle_timeout_s`` after its
  release, and is then answered with ``StreamExpiredError`` for ``expired_memory_s``
  (sqld: 300 s), after which its batons are simply invalid.
"""

from __future__ import annotations

import dataclasses
import enum

from edgelite.errors import BatonError, OverloadedError, StreamExpiredError
from edgelite.protocol.hrana.batons import (
    INVALID_BATON_MESSAGE,
    USED_BATON_MESSAGE,
    BatonCodec,
)

__all__ = ["EXPIRED_STREAM_MESSAGE", "StreamState", "StreamTable"]

EXPIRED_STREAM_MESSAGE = "The stream has expired due to inactivity"
_U64_MAX = 2**64 - 1


class StreamState(enum.Enum):
    IDLE = "idle"  # waiting for the next request (its baton is out with the client)
    BUSY = "busy"  # a request on it is running


@dataclasses.dataclass(slots=True)
class _Stream:
    seq: int  # sequence number of the one baton that may resume this stream
    state: StreamState
    idle_since_s: float


class StreamTable:
    """Open streams of one node, keyed by stream id (see the module docstring)."""

    def __init__(
        self,
        codec: BatonCodec,
        *,
        idle_timeout_s: float,
        streams_max: int,
        expired_memory_s: float = 300.0,
        expired_max: int = 4096,
        first_stream_id: int = 1,
    ) -> None:
        assert idle_timeout_s > 0 and expired_memory_s >= 0
        assert streams_max >= 1 and expired_max >= 0
        assert 0 <= first_stream_id <= _U64_MAX
        self._codec = codec
        self._idle_timeout_s = idle_timeout_s
        self._expired_memory_s = expired_memory_s
        self._streams_max = streams_max
        self._expired_max = expired_max
        self._next_stream_id = first_stream_id
        self._open: dict[int, _Stream] = {}
        self._expired_at_s: dict[int, float] = {}  # insertion order == expiry order
        self._to_close: list[int] = []  # expired lazily by resume(), reported by expire()

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._open

    def state(self, stream_id: int) -> StreamState:
        return self._open[stream_id].state

    def open(self, now_s: float) -> int:
        """A new stream, BUSY with the request that opened it."""
        if len(self._open) >= self._streams_max:
            raise OverloadedError(
                f"too many open streams (streams_max={self._streams_max}); try again later"
            )
        stream_id = self._next_stream_id
        assert stream_id <= _U64_MAX, "stream ids exhausted"
        self._next_stream_id += 1
        self._open[stream_id] = _Stream(seq=0, state=StreamState.BUSY, idle_since_s=now_s)
        return stream_id

    def resume(self, baton: str, now_s: float) -> int:
        """The stream named by ``baton``, now BUSY; the baton is used up.

        Raises ``BatonError`` for a forged, foreign, unknown or reused baton (or one whose
        stream is busy) and ``StreamExpiredError`` for a stream that idled out.
        """
        fields = self._codec.parse(baton)
        if fields.node_id != self._codec.node_id:
            raise BatonError(f"{INVALID_BATON_MESSAGE}: it belongs to node {fields.node_id!r}")
        stream = self._open.get(fields.stream_id)
        if stream is None:
            if fields.stream_id in self._expired_at_s:
                raise StreamExpiredError(EXPIRED_STREAM_MESSAGE)
            raise BatonError(INVALID_BATON_MESSAGE)
        if stream.state is StreamState.BUSY or fields.seq != stream.seq:
            raise BatonError(USED_BATON_MESSAGE)
        if now_s - stream.idle_since_s > self._idle_timeout_s:
            self._forget_expired(fields.stream_id, now_s)
            self._to_close.append(fields.stream_id)
            raise StreamExpiredError(EXPIRED_STREAM_MESSAGE)
        stream.seq += 1
        stream.state = StreamState.BUSY
        return fields.stream_id

    def release(self, stream_id: int, now_s: float) -> str:
        """The request on ``stream_id`` finished and the stream stays open: its next baton."""
        stream = self._open[stream_id]
        assert stream.state is StreamState.BUSY, f"stream {stream_id} released while idle"
        stream.state = StreamState.IDLE
        stream.idle_since_s = now_s
        return self._codec.issue(stream_id, stream.seq)

    def close(self, stream_id: int) -> None:
        """Forget the stream (a ``close`` request ran, or the request failed)."""
        self._open.pop(stream_id, None)

    def expire(self, now_s: float) -> list[int]:
        """Ids of streams that idled out since the last call; the caller closes them."""
        expired = self._to_close
        self._to_close = []
        for stream_id, stream in list(self._open.items()):
            idle = stream.state is StreamState.IDLE
            if idle and now_s - stream.idle_since_s > self._idle_timeout_s:
                self._forget_expired(stream_id, now_s)
                expired.append(stream_id)
        for stream_id, expired_at_s in list(self._expired_at_s.items()):
            if now_s - expired_at_s <= self._expired_memory_s:
                break
            del self._expired_at_s[stream_id]
        return expired

    def _forget_expired(self, stream_id: int, now_s: float) -> None:
        del self._open[stream_id]
        self._expired_at_s[stream_id] = now_s
        while len(self._expired_at_s) > self._expired_max:
            del self._expired_at_s[next(iter(self._expired_at_s))]

    def check_invariants(self) -> None:
        assert len(self._open) <= self._streams_max
        assert len(self._expired_at_s) <= self._expired_max
        assert not self._open.keys() & self._expired_at_s.keys()
        assert all(stream_id < self._next_stream_id for stream_id in self._open)
