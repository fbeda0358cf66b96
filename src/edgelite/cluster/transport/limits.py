"""The transport's bounds, its backoff policy and its per-peer counters."""

from __future__ import annotations

import dataclasses
import random

from edgelite.errors import ConfigError

__all__ = ["PeerCounters", "TransportLimits", "backoff_delay_s"]


@dataclasses.dataclass(frozen=True, slots=True)
class TransportLimits:
    """Every bound of the transport. Sizes in bytes, durations in seconds.

    ``frame_bytes_max`` must exceed the largest Raft message the member sends: one
    AppendEntries always carries at least one entry, so the largest entry plus a few
    hundred bytes (``RaftConfig.max_message_bytes`` bounds the rest).
    """

    frame_bytes_max: int = 32 << 20
    queue_messages_max: int = 4096
    queue_bytes_max: int = 64 << 20
    connect_timeout_s: float = 2.0
    handshake_timeout_s: float = 2.0
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 2.0
    ping_interval_s: float = 1.0
    idle_timeout_s: float = 5.0
    requests_inflight_max: int = 1024
    inbound_requests_inflight_max: int = 256
    handshakes_inflight_max: int = 64
    peers_max: int = 256
    write_batch_bytes_max: int = 1 << 20
    seen_nonces_max: int = 65536

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value <= 0:
                raise ConfigError(f"peer transport {field.name} must be > 0, got {value}")
        if self.idle_timeout_s <= self.ping_interval_s:
            raise ConfigError(f"peer transport idle_timeout_s ({self.idle_timeout_s}) must "
                              f"exceed ping_interval_s ({self.ping_interval_s})")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError("peer transport backoff_max_s must be >= backoff_initial_s")


def backoff_delay_s(failures: int, *, initial_s: float, max_s: float,
                    rng: random.Random) -> float:
    """Wait before the next dial after ``failures`` consecutive failures.

    0 after none; else a random value in ``[c/2, c]`` with
    ``c = min(max_s, initial_s * 2**(failures-1))``: exponential, never zero, and spread
    so that nodes that lost a peer together do not redial in lockstep.
    """
    if failures <= 0:
        return 0.0
    ceiling = min(max_s, initial_s * 2.0 ** min(failures - 1, 60))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


@dataclasses.dataclass(slots=True)
class PeerCounters:
    """Monotonic counters for one peer (``PeerTransport.peer_metrics``)."""

    sent: int = 0  # frames handed to the socket
    dropped: int = 0  # refused by send (queue full, too big) or discarded from the queue
    received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    connects: int = 0  # connections adopted, either direction
    reconnects: int = 0  # adopted after an earlier one
    connect_failures: int = 0  # dials that did not reach the handshake
    handshake_failures: int = 0
    protocol_errors: int = 0
    handler_errors: int = 0  # on_message raised
