"""Ready: everything the application must do for the core, and in which order.

Also :class:`Status`, a read-only picture of a node for logs, tests and admin pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgelite.raft.messages import InstallSnapshot, Message
from edgelite.raft.types import (
    ConfState,
    Entry,
    HardState,
    NodeId,
    ReadState,
    Role,
    SnapshotMeta,
    SoftState,
)

__all__ = ["ProgressStatus", "Ready", "Status"]


@dataclass(frozen=True, slots=True)
class Ready:
    """A batch of work from the core. Handle the fields **in this order**, then call
    ``raft.advance(ready)``; call ``raft.ready()`` again only after that.

    1. **Persist** (and fsync when ``must_sync``), before anything else:

       a. ``snapshot_chunks``: bytes of an incoming snapshot; write ``chunk.data`` at
          ``chunk.offset`` of the snapshot identified by ``chunk.meta.id``.
       b. ``snapshot``: the chunks are complete; replace the state machine with this
          snapshot and the log with its metadata (``MemoryStorage.apply_snapshot``).
       c. ``entries``: append to the log, replacing any existing suffix from the first
          entry's index on (those entries were never committed).
       d. ``hard_state``: term, vote and commit index.

       ``must_sync`` is True when (a)-(d) contain anything a message or a future
       election depends on (entries, snapshot data, a new term or vote). A commit index
       change alone does not need fsync: it can be learnt again. A sync must be
       cumulative: it also makes durable whatever earlier Readies wrote without one
       (membership safety relies on the commit index written before a conf change
       entry being durable once that entry is; see docs/design/raft.md).

    2. **Send** ``messages``, in order per destination if the transport can. They were
       produced assuming step 1 is durable: a vote, an AppendEntries acknowledgement or a
       chunk acknowledgement sent before its state is on disk breaks Raft's safety after
       a crash. Leader-side ``InstallSnapshot`` messages carry ``data=b""``; fill them
       with ``fill_snapshot_chunk`` from the snapshot ``meta.id`` names.

    3. **Apply** ``committed_entries`` to the state machine, in order. They are
       committed (durable on a quorum) and may already be in ``entries`` of this same
       Ready, which is why step 1 comes first. For a CONF_CHANGE entry call
       ``raft.apply_conf_change(decode_conf_change(entry.data))``; a NOOP entry changes
       nothing but the applied index.

    4. **Answer reads**: each ``ReadState`` may be served once the state machine has
       applied ``read_state.index``.

    ``soft_state`` (leader and role) and ``hard_state`` are set only when they changed
    since the previous Ready.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: SnapshotMeta | None = None
    snapshot_chunks: tuple[InstallSnapshot, ...] = ()
    committed_entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    must_sync: bool = False

    def is_empty(self) -> bool:
        return not (
            self.soft_state
            or self.hard_state
            or self.entries
            or self.snapshot
            or self.snapshot_chunks
            or self.committed_entries
            or self.messages
            or self.read_states
        )


@dataclass(frozen=True, slots=True)
class ProgressStatus:
    """A leader's view of one follower (see ``progress.py``)."""

    match: int
    next: int
    state: str
    is_learner: bool
    recent_active: bool
    inflight_messages: int
    paused: bool


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of one node's state. ``progress`` is empty unless it leads."""

    node_id: NodeId
    role: Role
    term: int
    vote: NodeId | None
    leader_id: NodeId | None
    commit: int
    applied: int
    first_index: int
    last_index: int
    conf_state: ConfState
    progress: tuple[tuple[NodeId, ProgressStatus], ...]
    lead_transferee: NodeId | None
