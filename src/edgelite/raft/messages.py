"""The messages Raft nodes exchange: one frozen dataclass per RPC.

Every message names its sender (``from_id``), its receiver (``to_id``) and the sender's
``term``. Fields are plain values (int, str, bytes, bool, tuples of Entry, SnapshotMeta)
so the cluster layer can serialise them without knowing the core.

Snapshot bytes never pass through the core: the leader emits :class:`InstallSnapshot`
with ``data=b""`` and ``(offset, length)``; the runtime fills the bytes with
:func:`fill_snapshot_chunk` before sending.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edgelite.raft.types import Entry, NodeId, SnapshotMeta

__all__ = [
    "AppendEntries",
    "AppendEntriesResponse",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "Message",
    "ReadIndexRequest",
    "ReadIndexResponse",
    "RequestVote",
    "RequestVoteResponse",
    "TimeoutNow",
    "fill_snapshot_chunk",
]


@dataclass(frozen=True, slots=True)
class AppendEntries:
    """Leader -> follower: append ``entries`` after ``(prev_log_index, prev_log_term)``.

    ``commit`` is the leader's commit index; the follower commits up to
    ``min(commit, prev_log_index + len(entries))`` (it only trusts what this message
    proved to match). Empty ``entries`` is a probe or a commit update.
    """

    from_id: NodeId
    to_id: NodeId
    term: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    commit: int


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    """Follower -> leader.

    Success: ``index`` is the highest index known to match the leader's log.
    Reject: ``index`` is the rejected ``prev_log_index``; ``(hint_index, hint_term)``
    is the follower's largest index ``<= index`` whose term is ``<=`` the leader's
    ``prev_log_term`` (fast backtracking, paper §5.3 end), so the leader can skip a
    whole conflicting term per round trip.
    """

    from_id: NodeId
    to_id: NodeId
    term: int
    success: bool
    index: int
    hint_index: int = 0
    hint_term: int = 0


@dataclass(frozen=True, slots=True)
class RequestVote:
    """Candidate -> voter. ``pre_vote``: a PreVote probe (thesis §9.6), ``term`` is the
    term the candidate *would* use and nobody changes state because of it.
    ``transfer``: sent after TimeoutNow, so voters ignore their leader lease."""

    from_id: NodeId
    to_id: NodeId
    term: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class RequestVoteResponse:
    from_id: NodeId
    to_id: NodeId
    term: int
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Leader -> follower. ``commit`` is ``min(follower's match, leader commit)`` so a
    follower never commits an entry it has not been shown to match. ``read_seq`` > 0
    asks the follower to confirm leadership for ReadIndex round ``read_seq``."""

    from_id: NodeId
    to_id: NodeId
    term: int
    commit: int
    read_seq: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    from_id: NodeId
    to_id: NodeId
    term: int
    read_seq: int = 0


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """Leader -> follower: bytes ``[offset, offset + length)`` of snapshot ``meta``.

    The core emits ``data=b""``; the runtime fills exactly ``length`` bytes
    (:func:`fill_snapshot_chunk`). ``done`` marks the last chunk.
    """

    from_id: NodeId
    to_id: NodeId
    term: int
    meta: SnapshotMeta
    offset: int
    length: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True)
class InstallSnapshotResponse:
    """Follower -> leader: it has persisted ``[0, next_offset)`` of ``snapshot_id``.

    ``done``: the follower needs no more chunks (installed it, or its log already
    covers the snapshot); then ``last_index`` is its last log index matching the leader.
    """

    from_id: NodeId
    to_id: NodeId
    term: int
    snapshot_id: str
    next_offset: int
    done: bool
    last_index: int = 0


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leader -> transfer target: start an election now (thesis §3.10)."""

    from_id: NodeId
    to_id: NodeId
    term: int


@dataclass(frozen=True, slots=True)
class ReadIndexRequest:
    """Follower or learner -> leader: ask for a read index on behalf of ``context``."""

    from_id: NodeId
    to_id: NodeId
    term: int
    context: bytes


@dataclass(frozen=True, slots=True)
class ReadIndexResponse:
    """Leader -> requester: a read with ``context`` is safe once ``index`` is applied."""

    from_id: NodeId
    to_id: NodeId
    term: int
    index: int
    context: bytes


Message = (
    AppendEntries
    | AppendEntriesResponse
    | RequestVote
    | RequestVoteResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | InstallSnapshotResponse
    | TimeoutNow
    | ReadIndexRequest
    | ReadIndexResponse
)


def fill_snapshot_chunk(message: InstallSnapshot, data: bytes) -> InstallSnapshot:
    """Return ``message`` carrying ``data``, which must be exactly ``message.length`` bytes."""
    if len(data) != message.length:
        raise ValueError(
            f"snapshot {message.meta.id!r} chunk at offset {message.offset} needs "
            f"{message.length} bytes, got {len(data)}"
        )
    return dataclasses.replace(message, data=data)
