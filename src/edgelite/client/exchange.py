"""The values a client session and its transports pass to each other.

A session operation (``execute``, ``commit``, ...) is a generator, like httpx's
``auth_flow``: it yields ``Pipeline`` (send these stream requests, give me the
``Reply``) or ``Sleep`` (wait, then resume me), and returns its result. A transport
turns a ``Pipeline`` into bytes for its wire (HTTP pipeline or WebSocket frames) and
the answer back into a ``Reply``, or raises ``WireError``. Shells (sync, async) only
run that loop; ``drive_sync`` is the sync one.

Stream tokens are opaque to the session: a transport returns one in every ``Reply``
whose stream is still open (HTTP: the baton and base URL; WebSocket: the stream id;
local: a marker) and expects it back in the next ``Pipeline`` for that stream.
``None`` in a ``Pipeline`` means "open a new stream"; ``None`` in a ``Reply`` means the
stream is closed.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Generator, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar

from edgelite.protocol.hrana import StreamRequest, StreamResult

__all__ = [
    "AsyncTransport",
    "Executed",
    "Flow",
    "Pipeline",
    "Reply",
    "Sleep",
    "SyncTransport",
    "WireError",
    "drive_sync",
]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Pipeline:
    """Stream requests to send in order, on ``stream`` (None: a new stream).

    ``consistency`` and ``bookmark`` go out as ``x-edgelite-consistency`` /
    ``x-edgelite-bookmark`` (HTTP) or as statement ``replication_index`` (WebSocket).
    """

    requests: tuple[StreamRequest, ...]
    stream: object | None
    consistency: str
    bookmark: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """One result per request, in order; ``stream`` is None once the stream is closed."""

    results: Sequence[StreamResult]
    stream: object | None
    replication_index: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the operation goes on (retry back-off)."""

    seconds: float


class Executed(enum.Enum):
    """Whether a failed pipeline may have run on the server."""

    NO = "no"  # the server cannot have seen it (connection refused, ...)
    MAYBE = "maybe"  # it may have run, partly or wholly (connection lost mid-way, ...)


class WireError(Exception):
    """A pipeline failed as a whole; the stream it used, if any, is gone.

    ``retryable``: sending the same pipeline again on a *new* stream is safe and may
    work (the server never saw it, and the failure looks transient).
    """

    def __init__(self, message: str, *, code: str, executed: Executed,
                 retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.executed = executed
        self.retryable = retryable
        self.status = status
        assert not (retryable and executed is Executed.MAYBE), "only unsent work is retried"


Flow: TypeAlias = Generator["Pipeline | Sleep", Any, T]


class SyncTransport(Protocol):
    """Moves pipelines with blocking I/O. ``exchange`` raises only ``WireError``."""

    def exchange(self, pipeline: Pipeline) -> Reply: ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    """Moves pipelines with asyncio. ``exchange`` raises only ``WireError``."""

    async def exchange(self, pipeline: Pipeline) -> Reply: ...

    async def aclose(self) -> None: ...


def drive_sync(flow: Flow[T], transport: SyncTransport) -> T:
    """Run a session operation to completion with blocking I/O."""
    try:
        step = next(flow)
        while True:
            if type(step) is Pipeline:
                try:
                    reply = transport.exchange(step)
                except WireError as exc:
                    step = flow.throw(exc)
                    continue
                step = flow.send(reply)
            else:
                assert isinstance(step, Sleep), step
                time.sleep(step.seconds)
                step = flow.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
