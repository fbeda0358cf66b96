"""RaftConfig: the knobs of one Raft node, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from edgelite.errors import ConfigError
from edgelite.raft.types import NodeId

__all__ = ["RaftConfig"]


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Configuration of one node. All durations are in ticks (the runtime decides how long
    a tick is). Validated on construction (``validate``).

    - ``election_timeout_ticks``: a follower that hears nothing from a leader for a random
      number of ticks in ``[election_timeout_ticks, 2 * election_timeout_ticks)`` starts
      an election; a CheckQuorum leader steps down if a quorum was silent that long.
    - ``heartbeat_interval_ticks``: how often a leader sends heartbeats; must be well
      below the election timeout.
    - ``pre_vote`` / ``check_quorum``: thesis §9.6; both on by default because together
      they stop a partitioned node from disrupting a healthy cluster.
    - ``max_inflight_messages``: AppendEntries messages in flight per follower in the
      replicate state (flow control).
    - ``max_message_bytes``: bound on one AppendEntries' entries (at least one entry is
      always sent) and the size of one snapshot chunk.
    - ``max_committed_bytes_per_ready``: bound on committed entries handed out per Ready.
    - ``max_uncommitted_bytes``: a leader refuses proposals while its uncommitted tail is
      larger than this (0: unbounded), so a lost quorum cannot grow the log forever.
    - ``max_pending_reads``: ReadIndex requests a leader queues before refusing more.
    - ``applied``: the index the application's state machine has already applied when
      the node (re)starts; committed entries after it are delivered again.
    """

    node_id: NodeId
    election_timeout_ticks: int = 10
    heartbeat_interval_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_inflight_messages: int = 256
    max_message_bytes: int = 1 << 20
    max_committed_bytes_per_ready: int = 64 << 20
    max_uncommitted_bytes: int = 256 << 20
    max_pending_reads: int = 4096
    applied: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        if not self.node_id:
            raise ConfigError("raft node_id must be a non-empty string")
        if self.heartbeat_interval_ticks < 1:
            raise ConfigError(
                f"heartbeat_interval_ticks must be >= 1, got {self.heartbeat_interval_ticks}"
            )
        if self.election_timeout_ticks <= self.heartbeat_interval_ticks:
            raise ConfigError(
                f"election_timeout_ticks ({self.election_timeout_ticks}) must exceed "
                f"heartbeat_interval_ticks ({self.heartbeat_interval_ticks})"
            )
        positive = {
            "max_inflight_messages": self.max_inflight_messages,
            "max_message_bytes": self.max_message_bytes,
            "max_committed_bytes_per_ready": self.max_committed_bytes_per_ready,
            "max_pending_reads": self.max_pending_reads,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if self.max_uncommitted_bytes < 0:
            raise ConfigError(
                f"max_uncommitted_bytes must be >= 0, got {self.max_uncommitted_bytes}"
            )
        if self.applied < 0:
            raise ConfigError(f"applied must be >= 0, got {self.applied}")
