"""Hrana-over-HTTP streams: the pure ``StreamTable`` (batons, expiry) plus, per stream,
the node's stream handle and the stored SQL texts.

A request on a stream owns it until it finishes (``release``); a request that fails
outside SQL destroys the stream (``discard``), as in sqld.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from typing import Any

from edgelite.protocol.hrana.batons import BatonCodec
from edgelite.protocol.hrana.sql_store import SqlStore
from edgelite.protocol.hrana.stream_table import StreamTable


@dataclasses.dataclass(eq=False, slots=True)
class HttpStream:
    stream_id: int
    namespace: str
    handle: Any
    stored_sql: SqlStore


class StreamRegistry:
    def __init__(self, *, idle_timeout_s: float, streams_max: int, stored_sql_max: int,
                 stored_sql_bytes_max: int, node_id: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._table = StreamTable(BatonCodec(secrets.token_bytes(32), node_id),
                                  idle_timeout_s=idle_timeout_s, streams_max=streams_max,
                                  first_stream_id=secrets.randbelow(1 << 40) + 1)
        self._streams: dict[int, HttpStream] = {}
        self._clock = clock
        self._store_limits = (stored_sql_max, stored_sql_bytes_max)

    def __len__(self) -> int:
        return len(self._streams)

    def open(self, namespace: str, handle: Any) -> HttpStream:
        stream_id = self._table.open(self._clock())
        count_max, bytes_max = self._store_limits
        stream = HttpStream(stream_id, namespace, handle,
                            SqlStore(count_max=count_max, text_bytes_max=bytes_max))
        self._streams[stream_id] = stream
        return stream

    def acquire(self, baton: str) -> HttpStream:
        """The stream ``baton`` names, now busy. Raises BatonError / StreamExpiredError."""
        return self._streams[self._table.resume(baton, self._clock())]

    def release(self, stream: HttpStream, *, closed: bool) -> str | None:
        """The request finished: the next baton, or None if the stream was closed."""
        if closed:
            self.discard(stream)
            return None
        return self._table.release(stream.stream_id, self._clock())

    def discard(self, stream: HttpStream) -> None:
        self._table.close(stream.stream_id)
        self._streams.pop(stream.stream_id, None)

    def expire(self) -> list[HttpStream]:
        """Streams that idled out; the caller closes their handles."""
        expired = self._table.expire(self._clock())
        return [s for s in (self._streams.pop(i, None) for i in expired) if s is not None]

    def drain(self) -> list[HttpStream]:
        streams = list(self._streams.values())
        for stream in streams:
            self.discard(stream)
        return streams
