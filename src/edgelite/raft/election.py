"""Elections: campaigns, PreVote, vote requests and the candidate's step function.

Paper §5.2 (leader election), §5.4.1 (election restriction), thesis §9.6 (PreVote and
the leader lease that CheckQuorum provides), thesis §3.10 (TimeoutNow elections).
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from edgelite.raft.config import RaftConfig
from edgelite.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    InstallSnapshot,
    Message,
    RequestVote,
    RequestVoteResponse,
)
from edgelite.raft.quorum import VoteResult, vote_result
from edgelite.raft.types import EntryKind, Role

if TYPE_CHECKING:
    from edgelite.raft.core import Raft

__all__ = [
    "CampaignKind",
    "answer_stale_message",
    "campaign",
    "handle_vote_request",
    "has_unapplied_conf_changes",
    "step_candidate",
]

logger = logging.getLogger(__name__)

_SCAN_PAGE_BYTES = 1 << 20


class CampaignKind(enum.Enum):
    PRE_ELECTION = "pre-election"  # PreVote round first (thesis §9.6)
    ELECTION = "election"  # a real election right away
    TRANSFER = "transfer"  # after TimeoutNow: voters ignore their leader lease

    @staticmethod
    def from_config(config: RaftConfig) -> CampaignKind:
        return CampaignKind.PRE_ELECTION if config.pre_vote else CampaignKind.ELECTION


def has_unapplied_conf_changes(r: Raft) -> bool:
    """Is a committed conf change not yet applied? Then our configuration is stale and we
    must not campaign with it (etcd does the same)."""
    lo = max(r.log.applied + 1, r.log.first_index())  # past a snapshot not yet installed
    hi = r.log.committed + 1
    while lo < hi:
        page = r.log.entries(lo, hi, _SCAN_PAGE_BYTES)
        if any(entry.kind is EntryKind.CONF_CHANGE for entry in page):
            return True
        lo = page[-1].index + 1
    return False


def campaign(r: Raft, kind: CampaignKind) -> None:
    if not r.promotable():
        logger.info("%s cannot campaign at term %d: not a voter", r.id, r.term)
        return
    if r.role is Role.LEADER:
        return
    if has_unapplied_conf_changes(r):
        logger.info("%s cannot campaign at term %d: unapplied conf changes", r.id, r.term)
        return
    pre_vote = kind is CampaignKind.PRE_ELECTION
    if pre_vote:
        r.become_pre_candidate()
        vote_term = r.term + 1
    else:
        r.become_candidate()
        vote_term = r.term
    if _record_vote(r, r.id, granted=True) is VoteResult.WON:
        _won(r)
        return
    last_index = r.log.last_index()
    last_term = r.log.last_term()
    for voter in sorted(r.conf.voters - {r.id}):
        r.send(
            RequestVote(
                r.id,
                voter,
                vote_term,
                last_index,
                last_term,
                pre_vote=pre_vote,
                transfer=kind is CampaignKind.TRANSFER,
            )
        )


def _record_vote(r: Raft, voter: str, *, granted: bool) -> VoteResult:
    r.votes.setdefault(voter, granted)  # the first answer of each voter counts
    return vote_result(r.conf.voters, r.votes)


def _won(r: Raft) -> None:
    if r.role is Role.PRE_CANDIDATE:
        campaign(r, CampaignKind.ELECTION)
    else:
        r.become_leader()


def handle_vote_request(r: Raft, m: RequestVote) -> None:
    """Grant at most one vote per term, only to candidates whose log is at least as
    up-to-date as ours (§5.2, §5.4.1). A PreVote is granted under the same log rule to a
    term in our future, and changes nothing here."""
    can_vote = (
        r.vote == m.from_id
        or (r.vote is None and r.lead is None)
        or (m.pre_vote and m.term > r.term)
    )
    if can_vote and r.log.is_up_to_date(m.last_log_index, m.last_log_term):
        # A granted answer carries the candidate's term, so it counts for that election.
        r.send(RequestVoteResponse(r.id, m.from_id, m.term, granted=True, pre_vote=m.pre_vote))
        if not m.pre_vote:
            r.election_elapsed = 0
            r.vote = m.from_id
        logger.info(
            "%s granted %svote to %s at term %d", r.id, "pre-" if m.pre_vote else "",
            m.from_id, m.term,
        )
        return
    r.send(RequestVoteResponse(r.id, m.from_id, r.term, granted=False, pre_vote=m.pre_vote))


def step_candidate(r: Raft, m: Message) -> None:
    """Candidate and pre-candidate: count votes; yield to a leader of our term."""
    if isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
        # A leader exists in our term (§5.2): become its follower, then handle its message.
        r.become_follower(r.term, m.from_id)
        r.step(m)
        return
    if not isinstance(m, RequestVoteResponse):
        return  # TimeoutNow, reads and stale responses mean nothing to a candidate
    if m.pre_vote != (r.role is Role.PRE_CANDIDATE):
        return  # an answer to the other kind of round
    result = _record_vote(r, m.from_id, granted=m.granted)
    if result is VoteResult.WON:
        _won(r)
    elif result is VoteResult.LOST:
        logger.info("%s lost the %s at term %d", r.id,
                    "pre-election" if m.pre_vote else "election", r.term)
        r.become_follower(r.term, None)


def answer_stale_message(r: Raft, m: Message) -> None:
    """A message from an older term. Mostly ignored (§5.1), with two answers that keep a
    cluster with PreVote/CheckQuorum live:

    - a stale leader's AppendEntries/Heartbeat gets a response at our term, so it steps
      down; otherwise a node that raised its term alone (e.g. after a partition) and
      whose PreVotes are rejected could never rejoin;
    - a stale PreVote gets an explicit rejection, so the pre-candidate learns our term.
    """
    if (r.config.check_quorum or r.config.pre_vote) and isinstance(m, AppendEntries | Heartbeat):
        r.send(AppendEntriesResponse(r.id, m.from_id, r.term, success=False, index=0))
    elif isinstance(m, RequestVote) and m.pre_vote:
        r.send(RequestVoteResponse(r.id, m.from_id, r.term, granted=False, pre_vote=True))
