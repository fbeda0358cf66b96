"""Raft: the consensus state machine of one node (etcd-io/raft's shape, Python names).

Inputs are calls: ``tick()``, ``step(message)``, ``propose(...)``, ``read_index(...)``,
``transfer_leadership(...)``, ``campaign()``, ``apply_conf_change(...)``,
``report_*(...)``. Output is a :class:`Ready` value the application handles in the order
its docstring states, then hands back with ``advance(ready)``. No clocks, sockets,
threads or global randomness: the same inputs and random source give the same outputs.

The behaviour per role lives in ``election.py`` (campaigns, votes), ``replication.py``
(the leader's log shipping, commit), ``follower.py`` (accepting the leader's log and
snapshots) and ``leader.py`` (ticks, transfer, reads, proposals); this module holds the
state, the role transitions and the Ready bookkeeping.
"""

from __future__ import annotations

import logging
from typing import Protocol

from edgelite.errors import ConfigError
from edgelite.raft import election, follower, leader, replication
from edgelite.raft.config import RaftConfig
from edgelite.raft.errors import CompactedError, InvalidConfChangeError
from edgelite.raft.log import RaftLog
from edgelite.raft.membership import apply_change
from edgelite.raft.messages import (
    AppendEntries,
    Heartbeat,
    InstallSnapshot,
    Message,
    RequestVote,
    RequestVoteResponse,
)
from edgelite.raft.progress import Progress
from edgelite.raft.read_only import ReadIndexQueue
from edgelite.raft.ready import ProgressStatus, Ready, Status
from edgelite.raft.storage import Storage
from edgelite.raft.types import (
    ConfChange,
    ConfState,
    EntryKind,
    HardState,
    NodeId,
    ProposalTicket,
    ReadState,
    Role,
    SnapshotMeta,
    SoftState,
    decode_conf_change,
)

__all__ = ["Raft", "RandomSource"]

logger = logging.getLogger(__name__)

_REPLAY_PAGE_BYTES = 1 << 20


class RandomSource(Protocol):
    """What the core needs from a random number generator (``random.Random`` fits)."""

    def randrange(self, start: int, stop: int, /) -> int: ...


class Raft:
    """One Raft node. Not thread-safe: one caller drives it.

    State invariants (checked by :meth:`check_invariants` after every input):
    ``applied <= committed <= last_index``; a leader is a voter of its configuration and
    has a progress entry for every member; ``vote`` is only set for the current term;
    ``lead_transferee`` is set only on a leader.
    """

    def __init__(self, config: RaftConfig, storage: Storage, rng: RandomSource) -> None:
        config.validate()
        self.config = config
        self.id: NodeId = config.node_id
        self.rng = rng
        self.log = RaftLog(storage)
        hard_state, conf_state = storage.initial_state()
        self.term = hard_state.term
        self.vote: NodeId | None = hard_state.vote
        self.lead: NodeId | None = None
        self.role = Role.FOLLOWER
        self.conf = conf_state
        self.progress: dict[NodeId, Progress] = {}
        self.votes: dict[NodeId, bool] = {}
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_timeout_ticks
        self.lead_transferee: NodeId | None = None
        self.pending_conf_index = 0
        self.removing_self = False
        self.uncommitted_bytes = 0
        self.reads = ReadIndexQueue(config.max_pending_reads)
        self.incoming_snapshot: follower.IncomingSnapshot | None = None
        # Outputs waiting for the next Ready.
        self.msgs: list[Message] = []
        self.snapshot_chunks: list[InstallSnapshot] = []
        self.read_states: list[ReadState] = []
        self._restore_from_storage(hard_state)
        self.prev_hard_state = self.hard_state()
        self.prev_soft_state = self.soft_state()
        self._outstanding: Ready | None = None
        self.become_follower(self.term, None)
        self.check_invariants()

    def _restore_from_storage(self, hard_state: HardState) -> None:
        """Recover commit, applied and the configuration at ``applied`` after a restart."""
        base = self.log.first_index() - 1
        snapshot = self.log.storage.snapshot_meta()
        if snapshot is not None:
            if snapshot.index < base:
                raise ConfigError(f"snapshot {snapshot.index} is behind compaction {base}")
            self.conf = snapshot.conf_state
            base = snapshot.index
        elif base > 0:
            raise ConfigError(f"storage compacted to {base} without a snapshot")
        last = self.log.last_index()
        if hard_state.commit > last:
            raise ConfigError(f"hard state commit {hard_state.commit} is past last index {last}")
        self.log.committed = max(hard_state.commit, base)
        applied = max(self.config.applied, base)
        if applied > self.log.committed:
            raise ConfigError(f"applied {applied} is past the commit index {self.log.committed}")
        self._replay_conf_changes(base, applied)
        self.log.applied = applied

    def _replay_conf_changes(self, after: int, upto: int) -> None:
        lo = after + 1
        while lo <= upto:
            page = self.log.entries(lo, upto + 1, _REPLAY_PAGE_BYTES)
            for entry in page:
                if entry.kind is EntryKind.CONF_CHANGE:
                    self.conf = self._changed_conf(decode_conf_change(entry.data))
            lo = page[-1].index + 1

    # -- public inputs ------------------------------------------------------------------

    def tick(self) -> None:
        """Advance the logical clock by one tick."""
        if self.role is Role.LEADER:
            leader.tick_leader(self)
        else:
            self.election_elapsed += 1
            if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
                self.election_elapsed = 0
                election.campaign(self, election.CampaignKind.from_config(self.config))
        self.check_invariants()

    def step(self, message: Message) -> None:
        """Deliver ``message`` (addressed to this node)."""
        assert message.to_id == self.id, f"{message!r} delivered to {self.id}"
        if self._step_term(message):
            if isinstance(message, RequestVote):
                election.handle_vote_request(self, message)
            elif self.role is Role.LEADER:
                leader.step_leader(self, message)
            elif self.role is Role.FOLLOWER:
                follower.step_follower(self, message)
            else:
                election.step_candidate(self, message)
        self.check_invariants()

    def _step_term(self, m: Message) -> bool:
        """Term rules common to every role (paper §5.1, thesis §9.6). False: drop ``m``."""
        if m.term > self.term:
            if isinstance(m, RequestVote) and not m.transfer and self.in_lease():
                logger.info(
                    "%s ignores %s vote request from %s at term %d: leader lease (term %d)",
                    self.id, "pre" if m.pre_vote else "a", m.from_id, m.term, self.term,
                )
                return False
            if isinstance(m, RequestVote) and m.pre_vote:
                return True  # a PreVote never changes our term
            if isinstance(m, RequestVoteResponse) and m.pre_vote and m.granted:
                return True  # granted at the term we would campaign in
            lead = m.from_id if isinstance(m, AppendEntries | Heartbeat | InstallSnapshot) else None
            elapsed = self.election_elapsed
            self.become_follower(m.term, lead)
            if isinstance(m, RequestVote):
                # Figure 2: only the leader's messages or a granted vote restart the
                # election timer. Restarting it for every (rejected) vote request lets
                # a candidate with a stale log keep a better one from ever timing out.
                self.election_elapsed = elapsed
            return True
        if m.term < self.term:
            election.answer_stale_message(self, m)
            return False
        return True

    def campaign(self) -> None:
        """Start an election now (a real one, skipping PreVote). For tests and bootstrap."""
        election.campaign(self, election.CampaignKind.ELECTION)
        self.check_invariants()

    def propose(self, data: bytes) -> ProposalTicket:
        """Append a NORMAL entry; raises NotLeaderError / ProposalDroppedError."""
        return self.propose_batch([data])[0]

    def propose_batch(self, datas: list[bytes]) -> list[ProposalTicket]:
        tickets = leader.propose_entries(self, [(EntryKind.NORMAL, data) for data in datas])
        self.check_invariants()
        return tickets

    def propose_conf_change(self, cc: ConfChange) -> ProposalTicket:
        """Propose one membership change (thesis §4.1); see ``leader.propose_conf_change``."""
        ticket = leader.propose_conf_change(self, cc)
        self.check_invariants()
        return ticket

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """The application applies a committed CONF_CHANGE entry: switch configuration.

        An invalid change (e.g. re-adding a voter after a restart replays the log) leaves
        the configuration unchanged on every node alike.
        """
        conf = self._changed_conf(cc)
        if conf != self.conf:
            self.switch_conf(conf)
        self.check_invariants()
        return self.conf

    def _changed_conf(self, cc: ConfChange) -> ConfState:
        try:
            return apply_change(self.conf, cc)
        except InvalidConfChangeError as exc:
            logger.info("%s ignores conf change %s %s: %s", self.id, cc.kind.value, cc.node_id,
                        exc.message)
            return self.conf

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read point; it arrives as ``Ready.read_states``.
        Raises NoLeaderError on a non-leader that knows no leader."""
        leader.read_index(self, context)
        self.check_invariants()

    def sole_voter_read_index(self) -> int | None:
        """The read point ``read_index`` would produce at once, without a Ready round
        trip: on a leader that is the only voter (it is the whole quorum, so there is no
        heartbeat round to wait for) and has committed an entry of its term. ``None``
        otherwise. A pure query: it changes nothing."""
        if (self.role is Role.LEADER and self.conf.voters == frozenset((self.id,))
                and self.log.term_or_zero(self.log.committed) == self.term):
            return self.log.committed
        return None

    def transfer_leadership(self, to: NodeId) -> None:
        """Hand leadership to voter ``to`` (thesis §3.10); raises NotLeaderError."""
        leader.transfer_leadership(self, to)
        self.check_invariants()

    def report_snapshot(self, meta: SnapshotMeta) -> None:
        """The application has durably taken a snapshot at ``meta.index`` and stored it
        (``storage.snapshot_meta()`` returns it); it may now compact its log up to
        ``meta.index``. Checks the snapshot describes this node's applied log."""
        if meta.index > self.log.applied:
            raise ValueError(f"snapshot at {meta.index} is past applied {self.log.applied}")
        try:
            term = self.log.term(meta.index)
        except CompactedError:
            term = meta.term  # an older snapshot than the one we compacted to: harmless
        if term != meta.term:
            raise ValueError(f"snapshot at {meta.index} has term {meta.term}, log has {term}")
        logger.info("%s reported snapshot at %d (term %d)", self.id, meta.index, meta.term)

    def report_unreachable(self, node_id: NodeId) -> None:
        """The transport failed to deliver to ``node_id``: stop streaming, probe again."""
        replication.report_unreachable(self, node_id)

    def report_snapshot_status(self, node_id: NodeId, ok: bool) -> None:
        """The runtime finished (``ok``) or gave up sending the snapshot to ``node_id``."""
        replication.report_snapshot_status(self, node_id, ok)

    # -- role transitions ---------------------------------------------------------------

    def promotable(self) -> bool:
        """May this node campaign? Voters only; learners and strangers never do."""
        return self.id in self.conf.voters

    def in_lease(self) -> bool:
        """CheckQuorum lease: we heard from a leader less than an election timeout ago."""
        return (
            self.config.check_quorum
            and self.lead is not None
            and self.election_elapsed < self.config.election_timeout_ticks
        )

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = None
            # Unsent messages of older terms were produced from state a newer leader may
            # replace before the next Ready is persisted: an acknowledgement of entries
            # it truncates would claim entries this node will never hold. Drop them
            # (losing a message is always safe); found by the simulator, seed 5174.
            self.msgs = [m for m in self.msgs if m.term >= term]
        self.lead = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        timeout = self.config.election_timeout_ticks
        self.randomized_election_timeout = self.rng.randrange(timeout, 2 * timeout)
        self.votes = {}
        self.progress = {}
        self.lead_transferee = None
        self.pending_conf_index = 0
        self.removing_self = False
        self.uncommitted_bytes = 0
        self.reads.clear()

    def become_follower(self, term: int, lead: NodeId | None) -> None:
        if term != self.term:
            self.incoming_snapshot = None
        self._reset(term)
        self.role = Role.FOLLOWER
        self.lead = lead
        logger.info("%s became follower at term %d", self.id, self.term)

    def become_pre_candidate(self) -> None:
        assert self.role is not Role.LEADER, "invalid transition leader -> pre-candidate"
        # Does not change term or vote: a PreVote round must leave no trace if it fails.
        self.votes = {}
        self.lead = None
        self.role = Role.PRE_CANDIDATE
        logger.info("%s became pre-candidate at term %d", self.id, self.term)

    def become_candidate(self) -> None:
        assert self.role is not Role.LEADER, "invalid transition leader -> candidate"
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE
        logger.info("%s became candidate at term %d", self.id, self.term)

    def become_leader(self) -> None:
        assert self.role is not Role.FOLLOWER, "invalid transition follower -> leader"
        assert self.id in self.conf.voters, f"{self.id} would lead without being a voter"
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        for node in sorted(self.conf.members):
            self.progress[node] = self.new_progress(node)
        own = self.progress[self.id]
        own.maybe_update(self.log.stable_last_index())
        own.become_replicate()
        own.recent_active = True
        # No conf change until everything already in the log (which may hold an
        # unapplied change from a previous leader) and our no-op are applied.
        self.pending_conf_index = self.log.last_index()
        self.removing_self = leader.log_removes_self(self)
        logger.info("%s became leader at term %d", self.id, self.term)
        leader.append_entries(self, [(EntryKind.NOOP, b"")])
        replication.bcast_append(self)

    def new_progress(self, node: NodeId) -> Progress:
        return Progress(
            self.log.last_index() + 1,
            self.config.max_inflight_messages,
            is_learner=node in self.conf.learners,
        )

    def switch_conf(self, conf: ConfState) -> None:
        """Adopt ``conf`` (a committed change was applied, or a snapshot installed)."""
        logger.info("%s switched to configuration %s", self.id, conf.describe())
        self.conf = conf
        if self.role is Role.LEADER:
            leader.on_conf_switched(self)
        elif self.role is not Role.FOLLOWER and not self.promotable():
            self.become_follower(self.term, None)

    # -- Ready --------------------------------------------------------------------------

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role)

    def has_ready(self) -> bool:
        """Is there work for the application? False while a Ready is outstanding."""
        if self._outstanding is not None:
            return False
        return bool(
            self.soft_state() != self.prev_soft_state
            or self.hard_state() != self.prev_hard_state
            or self.log.unstable.entries
            or self.log.unstable.snapshot is not None
            or self.snapshot_chunks
            or self.msgs
            or self.read_states
            or self.log.has_next_committed_entries()
        )

    def ready(self) -> Ready:
        """Take the pending work; call ``advance`` with it before the next ``ready``."""
        if self._outstanding is not None:
            raise RuntimeError("ready() called again before advance() of the previous Ready")
        soft = self.soft_state()
        hard = self.hard_state()
        entries = tuple(self.log.unstable.entries)
        snapshot = self.log.unstable.snapshot
        chunks = tuple(self.snapshot_chunks)
        hard_changed = hard != self.prev_hard_state
        must_sync = bool(entries or snapshot or chunks) or (
            hard.term != self.prev_hard_state.term or hard.vote != self.prev_hard_state.vote
        )
        ready = Ready(
            soft_state=soft if soft != self.prev_soft_state else None,
            hard_state=hard if hard_changed else None,
            entries=entries,
            snapshot=snapshot,
            snapshot_chunks=chunks,
            committed_entries=tuple(
                self.log.next_committed_entries(self.config.max_committed_bytes_per_ready)
            ),
            messages=tuple(self.msgs),
            read_states=tuple(self.read_states),
            must_sync=must_sync,
        )
        self.prev_soft_state = soft
        self.prev_hard_state = hard
        self.msgs = []
        self.snapshot_chunks = []
        self.read_states = []
        self._outstanding = ready
        return ready

    def advance(self, ready: Ready) -> None:
        """The application finished handling ``ready`` (persisted, sent, applied)."""
        if ready is not self._outstanding:
            raise RuntimeError("advance() with a Ready that is not the outstanding one")
        self._outstanding = None
        stable_index = 0
        if ready.snapshot is not None and self.log.stable_snapshot_to(ready.snapshot.index):
            stable_index = ready.snapshot.index
            self.log.applied = max(self.log.applied, ready.snapshot.index)
        if ready.entries:
            last = ready.entries[-1]
            if self.log.stable_to(last.index, last.term):
                stable_index = last.index
        if ready.committed_entries:
            applied_to = ready.committed_entries[-1].index
            self.log.applied_to(applied_to)
            if self.role is Role.LEADER:
                leader.release_uncommitted(self, ready.committed_entries)
        if stable_index and self.role is Role.LEADER:
            replication.on_self_persisted(self, stable_index)
        self.check_invariants()

    # -- outputs and introspection ------------------------------------------------------

    def send(self, message: Message) -> None:
        assert message.to_id != self.id, f"{self.id} sending to itself: {message!r}"
        self.msgs.append(message)

    def status(self) -> Status:
        return Status(
            node_id=self.id,
            role=self.role,
            term=self.term,
            vote=self.vote,
            leader_id=self.lead,
            commit=self.log.committed,
            applied=self.log.applied,
            first_index=self.log.first_index(),
            last_index=self.log.last_index(),
            conf_state=self.conf,
            progress=tuple(
                (
                    node,
                    ProgressStatus(
                        match=pr.match,
                        next=pr.next,
                        state=pr.state.value,
                        is_learner=pr.is_learner,
                        recent_active=pr.recent_active,
                        inflight_messages=len(pr.inflights),
                        paused=pr.is_paused(),
                    ),
                )
                for node, pr in sorted(self.progress.items())
            ),
            lead_transferee=self.lead_transferee,
        )

    def check_invariants(self) -> None:
        self.log.check()
        if self.role is Role.LEADER:
            assert self.lead == self.id
            assert self.id in self.conf.voters, f"leader {self.id} is not a voter"
            assert set(self.progress) == set(self.conf.members), (
                f"progress {sorted(self.progress)} vs members {sorted(self.conf.members)}"
            )
            for pr in self.progress.values():
                pr.check()
        else:
            assert self.lead_transferee is None and not self.progress
        assert self.vote is None or self.term > 0
