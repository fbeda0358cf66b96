"""The follower's (and learner's) step function: accept the leader's log and snapshots.

Paper §5.3 (AppendEntries receiver, Figure 2), §7 (InstallSnapshot receiver, here in
chunks), thesis §3.10 (TimeoutNow), §6.4 (forwarded ReadIndex answers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgelite.raft import election
from edgelite.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexResponse,
    TimeoutNow,
)
from edgelite.raft.types import ReadState, SnapshotMeta

if TYPE_CHECKING:
    from edgelite.raft.core import Raft

__all__ = ["IncomingSnapshot", "step_follower"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class IncomingSnapshot:
    """A snapshot being received: bytes ``[0, next_offset)`` are persisted (or in this
    Ready's ``snapshot_chunks``, which are persisted before the acknowledgement goes)."""

    meta: SnapshotMeta
    next_offset: int


def step_follower(r: Raft, m: Message) -> None:
    if isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
        r.election_elapsed = 0
        r.lead = m.from_id
        if isinstance(m, AppendEntries):
            handle_append_entries(r, m)
        elif isinstance(m, Heartbeat):
            handle_heartbeat(r, m)
        else:
            handle_snapshot_chunk(r, m)
    elif isinstance(m, TimeoutNow):
        logger.info("%s received TimeoutNow from %s at term %d", r.id, m.from_id, r.term)
        election.campaign(r, election.CampaignKind.TRANSFER)
    elif isinstance(m, ReadIndexResponse):
        r.read_states.append(ReadState(m.index, m.context))
    # Anything else (responses meant for a leader we no longer are) is dropped.


def _well_formed(m: AppendEntries) -> bool:
    """Entries must follow ``prev_log_index`` contiguously, with terms that never go
    backwards and never exceed the leader's. A peer that breaks this is buggy; its
    message must not reach the log."""
    index, term = m.prev_log_index, m.prev_log_term
    for entry in m.entries:
        if entry.index != index + 1 or not term <= entry.term <= m.term:
            return False
        index, term = entry.index, entry.term
    return True


def handle_append_entries(r: Raft, m: AppendEntries) -> None:
    if not _well_formed(m):
        logger.warning("%s drops malformed AppendEntries from %s", r.id, m.from_id)
        return
    log = r.log
    if m.prev_log_index < log.committed:
        # Everything up to our commit index matches the leader (leader completeness);
        # tell it so, rather than re-checking older entries.
        r.send(AppendEntriesResponse(r.id, m.from_id, r.term, success=True, index=log.committed))
        return
    last_new = log.maybe_append(m.prev_log_index, m.prev_log_term, m.commit, m.entries)
    if last_new is not None:
        r.send(AppendEntriesResponse(r.id, m.from_id, r.term, success=True, index=last_new))
        return
    hint_index, hint_term = log.find_conflict_by_term(
        min(m.prev_log_index, log.last_index()), m.prev_log_term
    )
    r.send(
        AppendEntriesResponse(
            r.id,
            m.from_id,
            r.term,
            success=False,
            index=m.prev_log_index,
            hint_index=hint_index,
            hint_term=hint_term,
        )
    )


def handle_heartbeat(r: Raft, m: Heartbeat) -> None:
    # The leader sends min(our match, its commit): entries we are known to share.
    assert m.commit <= r.log.last_index(), (
        f"{r.id}: heartbeat commit {m.commit} past last index {r.log.last_index()}"
    )
    r.log.commit_to(m.commit)
    r.send(HeartbeatResponse(r.id, m.from_id, r.term, read_seq=m.read_seq))


def _answer_chunk(r: Raft, m: InstallSnapshot, next_offset: int) -> None:
    r.send(InstallSnapshotResponse(r.id, m.from_id, r.term, m.meta.id, next_offset, done=False))


def _answer_done(r: Raft, m: InstallSnapshot, last_index: int) -> None:
    r.send(
        InstallSnapshotResponse(
            r.id, m.from_id, r.term, m.meta.id, m.meta.size_bytes, done=True,
            last_index=last_index,
        )
    )


def handle_snapshot_chunk(r: Raft, m: InstallSnapshot) -> None:
    """Accept chunks strictly in order; answer every chunk with the next offset wanted."""
    meta = m.meta
    if meta.term > m.term or meta.index < 1:
        logger.warning("%s drops snapshot chunk %r with impossible metadata", r.id, meta.id)
        return
    if meta.index <= r.log.committed:
        # Our log already covers it: stop the transfer (paper §7, "retain the log").
        r.incoming_snapshot = None
        _answer_done(r, m, r.log.committed)
        return
    incoming = r.incoming_snapshot
    if incoming is None or incoming.meta != meta:
        if m.offset != 0:
            _answer_chunk(r, m, 0)
            return
        incoming = r.incoming_snapshot = IncomingSnapshot(meta, 0)
    if m.offset != incoming.next_offset:
        _answer_chunk(r, m, incoming.next_offset)  # duplicate or out of order
        return
    if len(m.data) != m.length or m.offset + m.length > meta.size_bytes:
        logger.warning("%s drops malformed snapshot chunk %r at %d", r.id, meta.id, m.offset)
        return
    if m.done != (m.offset + m.length == meta.size_bytes):
        logger.warning("%s drops snapshot chunk %r with a wrong done flag", r.id, meta.id)
        return
    r.snapshot_chunks.append(m)
    incoming.next_offset += m.length
    if not m.done:
        _answer_chunk(r, m, incoming.next_offset)
        return
    r.incoming_snapshot = None
    _answer_done(r, m, _restore(r, meta))


def _restore(r: Raft, meta: SnapshotMeta) -> int:
    """Install ``meta`` unless our log already has its last entry (paper §7: then the
    entries after it are kept). Returns our last index known to match the leader."""
    if r.log.match_term(meta.index, meta.term):
        logger.info("%s fast-forwards commit to snapshot %d", r.id, meta.index)
        r.log.commit_to(meta.index)
        return meta.index
    logger.info("%s restores snapshot at %d (term %d)", r.id, meta.index, meta.term)
    r.log.restore(meta)
    if meta.conf_state != r.conf:
        r.switch_conf(meta.conf_state)
    return meta.index
