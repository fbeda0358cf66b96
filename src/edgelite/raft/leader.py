"""The leader's own duties: ticks (heartbeats, CheckQuorum), proposals, membership
changes, leadership transfer and ReadIndex.

Paper §5.2 (heartbeats), thesis §4.1 (one membership change at a time), §3.10
(leadership transfer), §6.4 (ReadIndex), §9.6 (CheckQuorum).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from edgelite.errors import NotLeaderError
from edgelite.raft import replication
from edgelite.raft.errors import (
    ConfChangePendingError,
    LeadershipTransferError,
    NoLeaderError,
    ProposalDroppedError,
)
from edgelite.raft.membership import validate_change
from edgelite.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
)
from edgelite.raft.quorum import committed_index, quorum_size
from edgelite.raft.read_only import ReadRequest
from edgelite.raft.types import (
    ENTRY_OVERHEAD_BYTES,
    ConfChange,
    ConfChangeKind,
    Entry,
    EntryKind,
    NodeId,
    ProposalTicket,
    ReadState,
    Role,
    decode_conf_change,
    encode_conf_change,
    entry_size_bytes,
)

if TYPE_CHECKING:
    from edgelite.raft.core import Raft

__all__ = [
    "ack_read",
    "append_entries",
    "log_removes_self",
    "on_conf_switched",
    "on_first_commit_of_term",
    "propose_conf_change",
    "propose_entries",
    "read_index",
    "release_uncommitted",
    "send_timeout_now",
    "step_leader",
    "tick_leader",
    "transfer_leadership",
]

logger = logging.getLogger(__name__)

_SCAN_PAGE_BYTES = 1 << 20


def tick_leader(r: Raft) -> None:
    r.heartbeat_elapsed += 1
    r.election_elapsed += 1
    if r.election_elapsed >= r.config.election_timeout_ticks:
        r.election_elapsed = 0
        if r.config.check_quorum and not _quorum_active(r):
            logger.info("%s steps down at term %d: quorum not heard from", r.id, r.term)
            r.become_follower(r.term, None)
            return
        if r.lead_transferee is not None:
            logger.info("%s aborts transfer to %s: timed out", r.id, r.lead_transferee)
            r.lead_transferee = None
    replication.tick_snapshots(r)
    if r.heartbeat_elapsed >= r.config.heartbeat_interval_ticks:
        r.heartbeat_elapsed = 0
        replication.bcast_heartbeat(r, r.reads.last_seq())


def _quorum_active(r: Raft) -> bool:
    """Did a majority of voters answer since the last check? Resets the marks."""
    active = sum(
        1 for node in r.conf.voters if node == r.id or r.progress[node].recent_active
    )
    for node, pr in r.progress.items():
        pr.recent_active = node == r.id
    return active >= quorum_size(len(r.conf.voters))


def step_leader(r: Raft, m: Message) -> None:
    if isinstance(m, AppendEntriesResponse):
        replication.handle_append_response(r, m)
    elif isinstance(m, HeartbeatResponse):
        replication.handle_heartbeat_response(r, m)
    elif isinstance(m, InstallSnapshotResponse):
        replication.handle_snapshot_response(r, m)
    elif isinstance(m, ReadIndexRequest):
        _leader_read(r, m.context, m.from_id)
    elif isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
        raise AssertionError(f"{r.id} leads term {r.term} but {m.from_id} sent {m!r}")
    # Vote responses after winning, TimeoutNow, ReadIndexResponse: nothing to do.


# -- proposals ---------------------------------------------------------------------------


def _require_leader(r: Raft, what: str) -> None:
    if r.role is not Role.LEADER:
        raise NotLeaderError(f"{r.id} is not the leader; cannot {what}", leader_id=r.lead)
    if r.lead_transferee is not None:
        raise ProposalDroppedError(
            f"{r.id} is transferring leadership to {r.lead_transferee}; cannot {what}"
        )
    if r.removing_self:
        # Nothing may follow our own removal in our log: once it commits we step down,
        # and a log longer than the others' would make us refuse the votes the next
        # leader needs (in a 2-voter cluster ours is one of them).
        raise ProposalDroppedError(f"{r.id} is removing itself from the voters; cannot {what}")


def log_removes_self(r: Raft) -> bool:
    """Does the unapplied part of our log hold a change removing this node as a voter?"""
    lo = max(r.log.applied + 1, r.log.first_index())
    hi = r.log.last_index() + 1
    while lo < hi:
        page = r.log.entries(lo, hi, _SCAN_PAGE_BYTES)
        for entry in page:
            if entry.kind is EntryKind.CONF_CHANGE and _removes(decode_conf_change(entry.data), r):
                return True
        lo = page[-1].index + 1
    return False


def _removes(cc: ConfChange, r: Raft) -> bool:
    return cc.kind is ConfChangeKind.REMOVE_VOTER and cc.node_id == r.id


def append_entries(r: Raft, items: Sequence[tuple[EntryKind, bytes]]) -> list[ProposalTicket]:
    """Append new entries of the current term to the leader's log (not yet sent)."""
    first = r.log.last_index() + 1
    entries = [Entry(r.term, first + k, kind, data) for k, (kind, data) in enumerate(items)]
    r.log.append(entries)
    r.uncommitted_bytes += sum(entry_size_bytes(entry) for entry in entries)
    return [ProposalTicket(entry.term, entry.index) for entry in entries]


def propose_entries(r: Raft, items: Sequence[tuple[EntryKind, bytes]]) -> list[ProposalTicket]:
    _require_leader(r, "propose")
    if not items:
        return []
    size = sum(len(data) + ENTRY_OVERHEAD_BYTES for _, data in items)
    limit = r.config.max_uncommitted_bytes
    if limit and r.uncommitted_bytes > 0 and r.uncommitted_bytes + size > limit:
        raise ProposalDroppedError(
            f"{r.id}: {r.uncommitted_bytes} uncommitted bytes; max_uncommitted_bytes is {limit}"
        )
    tickets = append_entries(r, items)
    replication.bcast_append(r)
    return tickets


def release_uncommitted(r: Raft, applied: Sequence[Entry]) -> None:
    released = sum(entry_size_bytes(entry) for entry in applied)
    r.uncommitted_bytes = max(0, r.uncommitted_bytes - released)


def propose_conf_change(r: Raft, cc: ConfChange) -> ProposalTicket:
    """One change at a time, and only once the leader committed an entry of its own
    term: without that, a change proposed now could be overwritten by a concurrent
    change a previous leader left uncommitted (Ongaro, raft-dev 2015)."""
    _require_leader(r, "change membership")
    if r.log.term_or_zero(r.log.committed) != r.term:
        raise ConfChangePendingError(
            f"{r.id} has not committed an entry of term {r.term} yet"
        )
    if r.pending_conf_index > r.log.applied:
        raise ConfChangePendingError(
            f"conf change at index {r.pending_conf_index} is not applied yet "
            f"(applied {r.log.applied})"
        )
    validate_change(r.conf, cc)
    (ticket,) = append_entries(r, [(EntryKind.CONF_CHANGE, encode_conf_change(cc))])
    r.pending_conf_index = ticket.index
    r.removing_self = _removes(cc, r)
    replication.bcast_append(r)
    return ticket


def on_conf_switched(r: Raft) -> None:
    """The leader applied a new configuration: track new members, forget removed ones."""
    for node in sorted(r.conf.members - set(r.progress)):
        r.progress[node] = r.new_progress(node)
    for node in sorted(set(r.progress) - r.conf.members):
        del r.progress[node]
    for node, pr in r.progress.items():
        pr.is_learner = node in r.conf.learners
    if r.id not in r.conf.voters:
        logger.info("%s steps down at term %d: removed from the voters", r.id, r.term)
        r.become_follower(r.term, None)
        return
    if r.lead_transferee is not None and r.lead_transferee not in r.conf.voters:
        r.lead_transferee = None
    replication.maybe_commit(r)  # the quorum changed; so may the commit index
    replication.bcast_append(r)
    _release_reads(r)


# -- leadership transfer -----------------------------------------------------------------


def transfer_leadership(r: Raft, to: NodeId) -> None:
    if r.role is not Role.LEADER:
        raise NotLeaderError(f"{r.id} is not the leader; cannot transfer", leader_id=r.lead)
    if to == r.id:
        return
    if to not in r.conf.voters:
        raise LeadershipTransferError(f"cannot transfer leadership to {to}: not a voter")
    if r.lead_transferee == to:
        return
    logger.info("%s starts transferring leadership to %s at term %d", r.id, to, r.term)
    r.lead_transferee = to
    r.election_elapsed = 0  # the transfer is aborted after one election timeout
    if r.progress[to].match == r.log.last_index():
        send_timeout_now(r, to)
    else:
        replication.send_append(r, to)


def send_timeout_now(r: Raft, to: NodeId) -> None:
    r.send(TimeoutNow(r.id, to, r.term))


# -- ReadIndex ---------------------------------------------------------------------------


def read_index(r: Raft, context: bytes) -> None:
    if r.role is Role.LEADER:
        _leader_read(r, context, r.id)
    elif r.lead is None:
        raise NoLeaderError(f"{r.id} knows no leader to ask for a read index")
    else:
        r.send(ReadIndexRequest(r.id, r.lead, r.term, context))


def _committed_own_term(r: Raft) -> bool:
    return r.log.term_or_zero(r.log.committed) == r.term


def _leader_read(r: Raft, context: bytes, requester: NodeId) -> None:
    if r.reads.full():
        if requester == r.id:
            raise ProposalDroppedError(f"{r.id}: {len(r.reads)} reads pending; queue full")
        logger.warning("%s drops read index request from %s: queue full", r.id, requester)
        return
    if not _committed_own_term(r):
        r.reads.defer(context, requester)
        return
    _register_reads(r, [(context, requester)])


def _register_reads(r: Raft, reads: Sequence[tuple[bytes, NodeId]]) -> None:
    if not reads:
        return
    for context, requester in reads:
        r.reads.add(context, requester, r.log.committed)
    if len(r.conf.voters) == 1:
        _release_reads(r)  # we are the whole quorum
    else:
        replication.bcast_heartbeat(r, r.reads.last_seq())


def on_first_commit_of_term(r: Raft) -> None:
    _register_reads(r, r.reads.take_deferred())


def ack_read(r: Raft, node: NodeId, seq: int) -> None:
    pr = r.progress[node]
    pr.read_seq_acked = max(pr.read_seq_acked, seq)
    _release_reads(r)


def _release_reads(r: Raft) -> None:
    acked = {node: pr.read_seq_acked for node, pr in r.progress.items()}
    acked[r.id] = r.reads.last_seq()
    for request in r.reads.release(committed_index(r.conf.voters, acked)):
        _answer_read(r, request)


def _answer_read(r: Raft, request: ReadRequest) -> None:
    if request.requester == r.id:
        r.read_states.append(ReadState(request.index, request.context))
    else:
        r.send(ReadIndexResponse(r.id, request.requester, r.term, request.index, request.context))
