"""The leader's log shipping: AppendEntries, snapshot chunks, heartbeats, commit.

Paper §5.3 (log replication, fast backtracking), §5.4.2 (commit only entries of the
current term by counting replicas), §7 (InstallSnapshot, here chunked). Flow control per
follower is in ``progress.py``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edgelite.raft import leader
from edgelite.raft.errors import CompactedError
from edgelite.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
)
from edgelite.raft.progress import Progress, ProgressState
from edgelite.raft.quorum import committed_index
from edgelite.raft.types import NodeId, Role

if TYPE_CHECKING:
    from edgelite.raft.core import Raft

__all__ = [
    "bcast_append",
    "bcast_heartbeat",
    "handle_append_response",
    "handle_heartbeat_response",
    "handle_snapshot_response",
    "maybe_commit",
    "on_self_persisted",
    "report_snapshot_status",
    "report_unreachable",
    "send_append",
    "tick_snapshots",
]

logger = logging.getLogger(__name__)


def send_append(r: Raft, to: NodeId, *, send_if_empty: bool = True) -> bool:
    """Send ``to`` the entries from its ``next`` index (or a snapshot if compacted).
    Returns whether a message went out."""
    pr = r.progress[to]
    if pr.is_paused():
        return False
    last = r.log.last_index()
    assert pr.next <= last + 1, f"progress of {to}: next {pr.next} past last {last}"
    prev_index = pr.next - 1
    try:
        prev_term = r.log.term(prev_index)
        entries = r.log.entries(pr.next, last + 1, r.config.max_message_bytes)
    except CompactedError:
        return _start_snapshot(r, to, pr)
    if not entries and not send_if_empty:
        return False
    r.send(
        AppendEntries(r.id, to, r.term, prev_index, prev_term, tuple(entries), r.log.committed)
    )
    pr.sent_entries(entries[-1].index if entries else prev_index, len(entries))
    return True


def bcast_append(r: Raft) -> None:
    for node in sorted(r.progress):
        if node != r.id:
            send_append(r, node)


def bcast_heartbeat(r: Raft, read_seq: int) -> None:
    for node, pr in sorted(r.progress.items()):
        if node != r.id:
            commit = min(pr.match, r.log.committed)
            r.send(Heartbeat(r.id, node, r.term, commit, read_seq))


def maybe_commit(r: Raft) -> bool:
    """Advance the commit index to what a majority of voters holds, but only through an
    entry of the current term (§5.4.2, Figure 8). True if it moved."""
    index = committed_index(r.conf.voters, {node: pr.match for node, pr in r.progress.items()})
    if index <= r.log.committed or r.log.term_or_zero(index) != r.term:
        return False
    first_of_term = r.log.term_or_zero(r.log.committed) != r.term
    r.log.commit_to(index)
    if first_of_term:
        leader.on_first_commit_of_term(r)
    return True


def on_self_persisted(r: Raft, index: int) -> None:
    """The leader's own log is durable up to ``index``: it now counts toward quorums."""
    if r.progress[r.id].maybe_update(index) and maybe_commit(r):
        bcast_append(r)


def handle_append_response(r: Raft, m: AppendEntriesResponse) -> None:
    pr = r.progress.get(m.from_id)
    if pr is None:
        return
    pr.recent_active = True
    if not m.success:
        probe = m.hint_index
        if m.hint_term > 0:
            probe, _ = r.log.find_conflict_by_term(m.hint_index, m.hint_term)
        if pr.maybe_decrease_to(m.index, probe):
            if pr.state is ProgressState.REPLICATE:
                pr.become_probe()
            send_append(r, m.from_id)
        return
    was_paused = pr.is_paused()
    if pr.maybe_update(m.index):
        _on_match_advanced(r, m.from_id, pr, was_paused)


def _on_match_advanced(r: Raft, to: NodeId, pr: Progress, was_paused: bool) -> None:
    if pr.state is ProgressState.PROBE:
        pr.become_replicate()
    elif pr.state is ProgressState.SNAPSHOT:
        if pr.match + 1 >= r.log.first_index():
            pr.become_probe()
            pr.become_replicate()
    else:
        pr.inflights.free_le(pr.match)
    if maybe_commit(r):
        bcast_append(r)
    elif was_paused:
        send_append(r, to)
    while send_append(r, to, send_if_empty=False):
        pass
    if to == r.lead_transferee and pr.match == r.log.last_index():
        leader.send_timeout_now(r, to)


def handle_heartbeat_response(r: Raft, m: HeartbeatResponse) -> None:
    pr = r.progress.get(m.from_id)
    if pr is None:
        return
    pr.recent_active = True
    pr.probe_sent = False
    if pr.state is ProgressState.REPLICATE and pr.inflights.full():
        pr.inflights.free_first()  # some message of the window may be lost: free a slot
    if pr.match < r.log.last_index():
        # In REPLICATE this also detects lost messages: the follower rejects the gap.
        send_append(r, m.from_id)
    if m.read_seq:
        leader.ack_read(r, m.from_id, m.read_seq)


# -- snapshots ---------------------------------------------------------------------------


def _start_snapshot(r: Raft, to: NodeId, pr: Progress) -> bool:
    if not pr.recent_active:
        return False  # do not ship a snapshot to a node that may be down
    meta = r.log.snapshot_meta()
    assert meta is not None, f"{r.id}: log compacted to {r.log.first_index()} without snapshot"
    logger.info("%s sends snapshot %d to %s (next %d)", r.id, meta.index, to, pr.next)
    pr.become_snapshot(meta)
    _send_chunk(r, to, pr)
    return True


def _send_chunk(r: Raft, to: NodeId, pr: Progress) -> None:
    meta = pr.pending_snapshot
    assert meta is not None
    offset = pr.snapshot_acked_offset
    length = min(r.config.max_message_bytes, meta.size_bytes - offset)
    done = offset + length == meta.size_bytes
    r.send(InstallSnapshot(r.id, to, r.term, meta, offset, length, b"", done))
    pr.snapshot_sent_offset = offset + length
    pr.snapshot_idle_ticks = 0


def handle_snapshot_response(r: Raft, m: InstallSnapshotResponse) -> None:
    pr = r.progress.get(m.from_id)
    if pr is None:
        return
    pr.recent_active = True
    if m.done:
        was_paused = pr.is_paused()
        advanced = pr.maybe_update(m.last_index)
        ours = pr.pending_snapshot is not None and pr.pending_snapshot.id == m.snapshot_id
        if ours or (pr.state is ProgressState.SNAPSHOT and pr.match + 1 >= r.log.first_index()):
            pr.become_probe()
            send_append(r, m.from_id)
        elif advanced:
            _on_match_advanced(r, m.from_id, pr, was_paused)
        return
    meta = pr.pending_snapshot
    if meta is None or meta.id != m.snapshot_id:
        return  # about a transfer we abandoned
    if not 0 <= m.next_offset < meta.size_bytes or m.next_offset == pr.snapshot_acked_offset:
        return  # impossible, or a duplicate of an answer already acted upon
    # The follower's offset is authoritative (a snapshot id always names the same
    # bytes): the next chunk in order, a restart (it lost its partial copy), or a
    # resume point (it kept a partial copy across our restart of the transfer). A late
    # answer costs one round trip, after which the follower's next answer corrects us;
    # ignoring answers here instead livelocked transfers (simulator seeds 6718, 13349).
    pr.snapshot_acked_offset = m.next_offset
    _send_chunk(r, m.from_id, pr)


def tick_snapshots(r: Raft) -> None:
    """Resend the chunk in flight when nothing was heard for an election timeout."""
    for node, pr in sorted(r.progress.items()):
        if pr.state is ProgressState.SNAPSHOT:
            pr.snapshot_idle_ticks += 1
            if pr.snapshot_idle_ticks >= r.config.election_timeout_ticks:
                _send_chunk(r, node, pr)


def report_unreachable(r: Raft, node: NodeId) -> None:
    if r.role is not Role.LEADER or node not in r.progress:
        return
    pr = r.progress[node]
    if pr.state is ProgressState.REPLICATE:
        pr.become_probe()


def report_snapshot_status(r: Raft, node: NodeId, ok: bool) -> None:
    """Runtime verdict on a snapshot transfer (etcd semantics): either way, probe again
    after the next heartbeat response; on failure from the last known match."""
    if r.role is not Role.LEADER or node not in r.progress:
        return
    pr = r.progress[node]
    if pr.state is not ProgressState.SNAPSHOT:
        return
    pr.become_probe()
    if not ok:
        pr.next = pr.match + 1
    pr.probe_sent = True
