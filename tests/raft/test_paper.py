"""One test per claim of the Raft paper (Ongaro & Ousterhout, "In Search of an
Understandable Consensus Algorithm", extended version) and of the Raft thesis (Ongaro,
"Consensus: Bridging Theory and Practice", 2014) for what the paper leaves out.

Each docstring quotes or paraphrases the claim and cites its section.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from edgelite.errors import NotLeaderError
from edgelite.raft import (
    ConfChange,
    ConfChangeKind,
    ConfChangePendingError,
    ConfState,
    EntryKind,
    HardState,
    ProposalDroppedError,
    Raft,
    RaftConfig,
    Role,
    SnapshotMeta,
)
from edgelite.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from tests.raft.helpers import (
    ack,
    cluster,
    drain,
    elect,
    entries_of,
    handle,
    log_terms,
    new_raft,
)

# -- §5.1 Raft basics --------------------------------------------------------------------


def test_servers_start_as_followers() -> None:
    """§5.2: "When servers start up, they begin as followers." """
    raft, _ = new_raft()
    assert raft.role is Role.FOLLOWER
    assert raft.lead is None


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.CANDIDATE, Role.LEADER])
def test_higher_term_updates_term_and_reverts_to_follower(role: Role) -> None:
    """§5.1: "If one server's current term is smaller than the other's, then it updates
    its current term to the larger value. If a candidate or leader discovers that its
    term is out of date, it immediately reverts to follower state." """
    raft, storage = new_raft(pre_vote=False)
    if role is Role.CANDIDATE:
        raft.campaign()
    elif role is Role.LEADER:
        elect(raft, storage)
    assert raft.role is role
    raft.step(AppendEntries("2", "1", 9, 0, 0, (), 0))
    assert (raft.role, raft.term, raft.lead) == (Role.FOLLOWER, 9, "2")
    assert raft.vote is None


def test_stale_term_requests_are_rejected() -> None:
    """§5.1: "If a server receives a request with a stale term number, it rejects the
    request." A stale AppendEntries changes nothing and is answered at our term."""
    raft, storage = new_raft(term=5, log_terms=[1, 1])
    raft.step(AppendEntries("2", "1", 3, 2, 1, tuple(entries_of(3, start=3)), 3))
    assert raft.log.last_index() == 2 and raft.term == 5
    (response,) = drain(raft, storage)
    assert isinstance(response, AppendEntriesResponse)
    assert (response.term, response.success) == (5, False)


def test_stale_vote_request_is_not_granted() -> None:
    """§5.1 applied to RequestVote (Figure 2: "Reply false if term < currentTerm")."""
    raft, storage = new_raft(term=5, pre_vote=False)
    raft.step(RequestVote("2", "1", 4, 10, 4))
    assert raft.vote is None
    assert drain(raft, storage) == []


# -- §5.2 Leader election ----------------------------------------------------------------


def test_leader_sends_heartbeats_every_interval() -> None:
    """§5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log
    entries) to all followers in order to maintain their authority." """
    raft, storage = new_raft(heartbeat_interval_ticks=2)
    elect(raft, storage)
    raft.tick()
    assert not [m for m in drain(raft, storage) if isinstance(m, Heartbeat)]
    raft.tick()
    heartbeats = [m for m in drain(raft, storage) if isinstance(m, Heartbeat)]
    assert sorted(m.to_id for m in heartbeats) == ["2", "3"]


def test_follower_starts_election_when_it_hears_nothing() -> None:
    """§5.2: "If a follower receives no communication over a period of time called the
    election timeout, then it ... begins an election": it increments its term, votes for
    itself and issues RequestVote RPCs to each of the other servers."""
    raft, storage = new_raft(pre_vote=False, election_timeout_ticks=10)
    for _ in range(20):
        raft.tick()
        if raft.role is Role.CANDIDATE:
            break
    assert (raft.role, raft.term, raft.vote) == (Role.CANDIDATE, 1, "1")
    votes = drain(raft, storage)
    assert sorted(m.to_id for m in votes) == ["2", "3"]
    assert all(isinstance(m, RequestVote) and m.term == 1 for m in votes)
    assert storage.hard_state == HardState(1, "1", 0)


def test_candidate_starts_new_election_after_split_vote() -> None:
    """§5.2: "each candidate will time out and start a new election by incrementing its
    term and initiating another round of RequestVote RPCs." """
    raft, storage = new_raft(pre_vote=False)
    raft.campaign()
    drain(raft, storage)
    for _ in range(20):
        raft.tick()
    assert raft.role is Role.CANDIDATE and raft.term >= 2


@pytest.mark.parametrize(
    ("voters", "granted", "rejected", "outcome"),
    [
        (1, 0, 0, Role.LEADER),
        (3, 1, 0, Role.LEADER),
        (3, 0, 2, Role.FOLLOWER),
        (3, 0, 1, Role.CANDIDATE),
        (5, 2, 0, Role.LEADER),
        (5, 1, 0, Role.CANDIDATE),
        (5, 1, 3, Role.FOLLOWER),
    ],
)
def test_candidate_wins_with_votes_from_a_majority(
    voters: int, granted: int, rejected: int, outcome: Role
) -> None:
    """§5.2: "A candidate wins an election if it receives votes from a majority of the
    servers in the full cluster for the same term." Its own vote counts."""
    ids = [str(n) for n in range(1, voters + 1)]
    raft, _storage = new_raft(voters=ids, pre_vote=False)
    raft.campaign()
    others = iter(ids[1:])
    for _ in range(granted):
        raft.step(RequestVoteResponse(next(others), "1", 1, granted=True))
    for _ in range(rejected):
        raft.step(RequestVoteResponse(next(others), "1", 1, granted=False))
    assert raft.role is outcome


def test_each_server_votes_for_at_most_one_candidate_per_term() -> None:
    """§5.2: "Each server will vote for at most one candidate in a given term, on a
    first-come-first-served basis." A repeated request from the same candidate is
    granted again (the answer may have been lost)."""
    raft, storage = new_raft(pre_vote=False)
    raft.step(RequestVote("2", "1", 1, 0, 0))
    raft.step(RequestVote("3", "1", 1, 0, 0))
    raft.step(RequestVote("2", "1", 1, 0, 0))
    answers = [(m.to_id, m.granted) for m in drain(raft, storage)
               if isinstance(m, RequestVoteResponse)]
    assert answers == [("2", True), ("3", False), ("2", True)]
    assert storage.hard_state.vote == "2"


def test_only_a_granted_vote_or_the_leader_restarts_the_election_timer() -> None:
    """Figure 2 (Followers): "If election timeout elapses without receiving
    AppendEntries RPC from current leader or granting vote to candidate: convert to
    candidate." A rejected vote request adopts the higher term but keeps the timer
    running, so a candidate with a stale log cannot hold a better node back forever."""
    raft, storage = new_raft("3", log_terms=[1, 2, 2], term=2, pre_vote=False)
    for _ in range(5):
        raft.tick()
    raft.step(RequestVote("2", "3", 7, 1, 1))  # stale log: rejected
    assert (raft.term, raft.vote, raft.election_elapsed) == (7, None, 5)
    assert [m.granted for m in drain(raft, storage) if isinstance(m, RequestVoteResponse)] == [
        False
    ]
    raft.step(RequestVote("1", "3", 8, 3, 2))  # up-to-date: granted
    assert (raft.term, raft.vote, raft.election_elapsed) == (8, "1", 0)


def test_candidate_yields_to_leader_of_same_term() -> None:
    """§5.2: "If the leader's term is at least as large as the candidate's current term,
    then the candidate recognizes the leader as legitimate and returns to follower
    state." """
    raft, _ = new_raft(pre_vote=False)
    raft.campaign()
    raft.step(AppendEntries("2", "1", 1, 0, 0, (), 0))
    assert (raft.role, raft.term, raft.lead) == (Role.FOLLOWER, 1, "2")


def test_election_timeouts_are_randomized_in_one_to_two_timeouts() -> None:
    """§5.2: "election timeouts are chosen randomly from a fixed interval"; here
    ``[election_timeout_ticks, 2 * election_timeout_ticks)`` ticks, so that in most
    cases only a single server times out."""
    seen = set()
    for seed in range(50):
        raft, _ = new_raft(seed=seed, election_timeout_ticks=10)
        seen.add(raft.randomized_election_timeout)
        assert 10 <= raft.randomized_election_timeout < 20
    assert len(seen) >= 5


# -- §5.3 Log replication ----------------------------------------------------------------


def test_leader_appends_command_and_replicates_it() -> None:
    """§5.3: "The leader appends the command to its log as a new entry, then issues
    AppendEntries RPCs in parallel to each of the other servers to replicate the
    entry." """
    raft, storage = new_raft()
    elect(raft, storage)
    for node in ("2", "3"):
        ack(raft, node, 1)
    drain(raft, storage)
    ticket = raft.propose(b"x")
    assert ticket.index == 2 and raft.log.last_index() == 2
    sent = [m for m in drain(raft, storage) if isinstance(m, AppendEntries)]
    assert sorted(m.to_id for m in sent) == ["2", "3"]
    for message in sent:
        assert (message.prev_log_index, message.prev_log_term) == (1, 1)
        assert [(e.term, e.index, e.data) for e in message.entries] == [(1, 2, b"x")]


def test_entry_commits_once_a_majority_stored_it() -> None:
    """§5.3: "A log entry is committed once the leader that created the entry has
    replicated it on a majority of the servers." The leader counts itself only once its
    own copy is persisted (the Ready was handled)."""
    raft, storage = new_raft(voters=["1", "2", "3", "4", "5"])
    elect(raft, storage)
    ack(raft, "2", 1)
    assert raft.log.committed == 0
    ack(raft, "3", 1)
    assert raft.log.committed == 1
    raft.propose(b"x")
    ack(raft, "2", 2)
    ack(raft, "3", 2)
    assert raft.log.committed == 1, "leader's own entry is not yet persisted"
    drain(raft, storage)
    assert raft.log.committed == 2


def test_commit_covers_all_preceding_entries() -> None:
    """§5.3: committing an entry "also commits all preceding entries in the leader's
    log, including entries created by previous leaders." """
    raft, storage = new_raft(log_terms=[1, 1, 2], term=2)
    elect(raft, storage)
    assert raft.term == 3 and raft.log.last_index() == 4
    ack(raft, "2", 4)
    assert raft.log.committed == 4
    committed = [e.index for e in handle(raft, storage).committed_entries]  # type: ignore[union-attr]
    assert committed == [1, 2, 3, 4]


def test_follower_applies_entries_the_leader_committed() -> None:
    """§5.3: "Once a follower learns that a log entry is committed, it applies the entry
    to its local state machine (in log order)." """
    raft, storage = new_raft("2")
    raft.step(AppendEntries("1", "2", 1, 0, 0, tuple(entries_of(1, 1, 1)), 2))
    ready = handle(raft, storage)
    assert ready is not None
    assert [e.index for e in ready.committed_entries] == [1, 2]
    raft.step(Heartbeat("1", "2", 1, 3))
    ready = handle(raft, storage)
    assert ready is not None and [e.index for e in ready.committed_entries] == [3]


def test_follower_refuses_entries_when_previous_entry_does_not_match() -> None:
    """§5.3 consistency check: "If the follower does not find an entry in its log with
    the same index and term, then it refuses the new entries." """
    raft, storage = new_raft("2", log_terms=[1, 1])
    raft.step(AppendEntries("1", "2", 2, 2, 2, tuple(entries_of(2, start=3)), 0))
    raft.step(AppendEntries("1", "2", 2, 5, 2, tuple(entries_of(2, start=6)), 0))
    answers = [m for m in drain(raft, storage) if isinstance(m, AppendEntriesResponse)]
    assert [(m.success, m.index) for m in answers] == [(False, 2), (False, 5)]
    assert log_terms(raft) == [1, 1]


def test_follower_deletes_conflicting_entries_and_appends_new_ones() -> None:
    """§5.3 / Figure 2: "If an existing entry conflicts with a new one (same index but
    different terms), delete the existing entry and all that follow it"; entries already
    present are kept (a stale, shorter AppendEntries truncates nothing)."""
    raft, storage = new_raft("2", log_terms=[1, 1, 1, 1])
    raft.step(AppendEntries("1", "2", 2, 2, 1, tuple(entries_of(2, start=3)), 0))
    drain(raft, storage)
    assert log_terms(raft) == [1, 1, 2]
    assert [storage.term(i) for i in range(1, 4)] == [1, 1, 2]
    assert storage.last_index() == 3
    raft.step(AppendEntries("1", "2", 2, 1, 1, tuple(entries_of(1, start=2)), 0))
    assert log_terms(raft) == [1, 1, 2]


FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIGURE_7_FOLLOWERS = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("case", sorted(FIGURE_7_FOLLOWERS))
def test_leader_brings_any_follower_log_in_line(case: str) -> None:
    """§5.3 / Figure 7: "the leader handles inconsistencies by forcing the followers'
    logs to duplicate its own", by finding the latest entry where the logs agree. The
    leader's own log never changes (Leader Append-Only, Figure 3)."""
    follower_terms = FIGURE_7_FOLLOWERS[case]
    leader, leader_storage = new_raft("1", ["1", "2"], log_terms=FIGURE_7_LEADER, term=7)
    follower, follower_storage = new_raft("2", ["1", "2"], log_terms=follower_terms, term=7)
    pending = elect(leader, leader_storage)  # term 8; appends a no-op at 11
    expected = [*FIGURE_7_LEADER, 8]
    for _ in range(50):
        if not pending:
            break
        for message in pending:
            (follower if message.to_id == "2" else leader).step(message)
        pending = drain(follower, follower_storage) + drain(leader, leader_storage)
    assert log_terms(follower) == expected
    assert log_terms(leader) == expected
    assert leader.log.committed == 11


def test_fast_backtracking_skips_a_conflicting_term_per_round_trip() -> None:
    """§5.3 (end): with the conflicting term and the first index it stores for that term
    in the rejection, "one AppendEntries RPC will be required for each term with
    conflicting entries, rather than one RPC per entry." Follower f of Figure 7 holds
    terms 2 and 3 that the leader lacks: two rejections, not seven."""
    leader, leader_storage = new_raft("1", ["1", "2"], log_terms=FIGURE_7_LEADER, term=7)
    follower, follower_storage = new_raft(
        "2", ["1", "2"], log_terms=FIGURE_7_FOLLOWERS["f"], term=7
    )
    pending = elect(leader, leader_storage)
    rejections = 0
    while pending:
        for message in pending:
            (follower if message.to_id == "2" else leader).step(message)
            if isinstance(message, AppendEntriesResponse) and not message.success:
                rejections += 1
        pending = drain(follower, follower_storage) + drain(leader, leader_storage)
    assert rejections <= 2
    assert log_terms(follower) == [*FIGURE_7_LEADER, 8]


# -- §5.4 Safety -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate_last_term", "candidate_last_index", "granted"),
    [
        (1, 3, False),  # older last term
        (2, 2, False),  # same last term, shorter log
        (2, 3, True),  # same log
        (2, 4, True),  # same last term, longer log
        (3, 1, True),  # newer last term wins even with a shorter log
    ],
)
def test_vote_only_for_candidates_at_least_as_up_to_date(
    candidate_last_term: int, candidate_last_index: int, granted: bool
) -> None:
    """§5.4.1: "the voter denies its vote if its own log is more up-to-date than that of
    the candidate ... If the logs have last entries with different terms, then the log
    with the later term is more up-to-date. If the logs end with the same term, then
    whichever log is longer is more up-to-date." """
    raft, storage = new_raft("1", log_terms=[1, 2, 2], term=2, pre_vote=False)
    raft.step(RequestVote("2", "1", 3, candidate_last_index, candidate_last_term))
    (answer,) = drain(raft, storage)
    assert isinstance(answer, RequestVoteResponse) and answer.granted is granted


def test_previous_term_entry_is_not_committed_by_counting_replicas() -> None:
    """§5.4.2 / Figure 8: "Raft never commits log entries from previous terms by counting
    replicas. Only log entries from the leader's current term are committed by counting
    replicas." An old entry stored on a majority stays uncommitted until an entry of the
    current term (here the new leader's no-op) reaches a majority."""
    raft, storage = new_raft("1", ["1", "2", "3", "4", "5"], log_terms=[1, 2], term=3)
    elect(raft, storage)  # term 4, no-op at 3
    for node in ("2", "3"):
        ack(raft, node, 2)  # entry 2 (term 2) is now on a majority
    assert raft.log.committed == 0
    ack(raft, "2", 3)
    ack(raft, "3", 3)
    assert raft.log.committed == 3


def test_new_leader_commits_a_no_op_of_its_term() -> None:
    """Thesis §6.4 / paper §8: "each leader commit[s] a blank no-op entry into the log at
    the start of its term", which also commits everything before it (§5.4.2)."""
    c = cluster()
    c.elect("2")
    leader = c.nodes["2"].raft
    last = leader.log.entries(leader.log.last_index(), leader.log.last_index() + 1, 1 << 20)
    assert last[0].kind is EntryKind.NOOP and last[0].term == leader.term
    assert leader.log.committed == last[0].index


def test_leader_completeness_after_leader_change() -> None:
    """§5.4 Leader Completeness: "if a log entry is committed in a given term, then that
    entry will be present in the logs of the leaders for all higher-numbered terms." """
    c = cluster(voters=["1", "2", "3", "4", "5"])
    c.elect("1")
    c.nodes["1"].raft.propose(b"committed")
    c.stabilize()
    c.partition(["1", "2"], ["3", "4", "5"])
    c.nodes["1"].raft.propose(b"lost")
    c.stabilize()
    c.tick("5", 30)  # let 5's lease expire so it grants votes; 3 and 4 the same
    c.tick("4", 30)
    c.elect("3")
    data = [d for _, d in c.nodes["3"].applied]
    assert b"committed" in data and b"lost" not in data


# -- §5.5 Follower and candidate crashes ----------------------------------------------


def test_leader_retries_until_follower_answers() -> None:
    """§5.5: "If a follower or candidate crashes ... Raft handles these failures by
    retrying indefinitely; if the crashed server restarts, then the RPC will complete
    successfully." """
    c = cluster()
    c.elect("1")
    c.isolate("3")
    c.nodes["1"].raft.propose(b"while-down")
    c.stabilize()
    c.restart("3")
    c.heal()
    c.tick("1")
    c.stabilize()
    assert [d for _, d in c.nodes["3"].applied] == [b"while-down"]


def test_restart_keeps_term_vote_and_log() -> None:
    """§5.1 / Figure 2: currentTerm, votedFor and log[] are persistent, so a restarted
    server does not vote twice in a term."""
    raft, storage = new_raft("1", pre_vote=False)
    raft.step(RequestVote("2", "1", 3, 0, 0))
    drain(raft, storage)
    restarted = Raft(RaftConfig("1", pre_vote=False), storage, random.Random(1))
    assert (restarted.term, restarted.vote) == (3, "2")
    restarted.step(RequestVote("3", "1", 3, 0, 0))
    (answer,) = drain(restarted, storage)
    assert isinstance(answer, RequestVoteResponse) and not answer.granted


def test_unsent_acknowledgements_of_an_older_term_are_dropped() -> None:
    """Figure 2's persist-before-respond, across a term change inside one Ready: a
    follower acknowledges entries from the term-2 leader, then (before its Ready is
    handled) a term-3 leader replaces them. The term-2 acknowledgement must not go out:
    the entries it claims will never be on disk. (Found by the simulator.)"""
    raft, _ = new_raft("3", log_terms=[1], term=1)
    raft.step(AppendEntries("1", "3", 2, 1, 1, tuple(entries_of(2, 2, start=2)), 1))
    raft.step(AppendEntries("2", "3", 3, 1, 1, tuple(entries_of(3, start=2)), 1))
    ready = raft.ready()
    assert [(e.term, e.index) for e in ready.entries] == [(3, 2)]
    answers = [(m.to_id, m.term, m.index) for m in ready.messages
               if isinstance(m, AppendEntriesResponse)]
    assert answers == [("2", 3, 2)]


def test_vote_is_persisted_before_the_vote_is_sent() -> None:
    """Figure 2: persistent state is "updated on stable storage before responding to
    RPCs". The vote and its response travel in one Ready, whose contract says persist
    first, and ``must_sync`` is set."""
    raft, _ = new_raft("1", pre_vote=False)
    raft.step(RequestVote("2", "1", 1, 0, 0))
    ready = raft.ready()
    assert ready.hard_state == HardState(1, "2", 0)
    assert ready.must_sync
    assert [type(m) for m in ready.messages] == [RequestVoteResponse]


def test_entries_are_persisted_before_they_are_acknowledged() -> None:
    """Figure 2 / §5.3: a follower acknowledges entries it has stored; the entries and
    the acknowledgement travel in one Ready (persist, then send), with ``must_sync``."""
    raft, _ = new_raft("2")
    raft.step(AppendEntries("1", "2", 1, 0, 0, tuple(entries_of(1, 1)), 0))
    ready = raft.ready()
    assert [e.index for e in ready.entries] == [1, 2]
    assert ready.must_sync
    (answer,) = ready.messages
    assert isinstance(answer, AppendEntriesResponse) and answer.index == 2


# -- §6 Cluster membership changes (thesis §4) -------------------------------------------


def test_conf_change_waits_for_a_commit_in_the_leaders_term() -> None:
    """Thesis §4.1 erratum (Ongaro, raft-dev 2015): a leader may not start a membership
    change until it has committed an entry of its current term."""
    raft, storage = new_raft()
    elect(raft, storage)
    with pytest.raises(ConfChangePendingError):
        raft.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "4"))
    ack(raft, "2", 1)
    raft.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "4"))


def test_one_membership_change_at_a_time() -> None:
    """Thesis §4.1: "the leader ... does not begin another configuration change until the
    previous one has been committed" (here: applied, which implies committed)."""
    c = cluster()
    c.elect("1")
    leader = c.nodes["1"].raft
    leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "4"))
    with pytest.raises(ConfChangePendingError):
        leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "5"))
    c.stabilize()
    leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "5"))


def test_added_voter_counts_toward_the_quorum() -> None:
    """§6 / thesis §4.1: once the new configuration is in force, majorities are counted
    in it: with 4 voters, 3 copies are needed."""
    c = cluster()
    c.elect("1")
    c.add_node("4")
    c.nodes["1"].raft.propose_conf_change(ConfChange(ConfChangeKind.ADD_VOTER, "4"))
    c.stabilize()
    assert c.nodes["1"].raft.conf.voters == {"1", "2", "3", "4"}
    c.partition(["1", "2"], ["3", "4"])
    ticket = c.nodes["1"].raft.propose(b"x")
    c.stabilize()
    assert c.nodes["1"].raft.log.committed < ticket.index
    c.heal()
    c.tick("1")
    c.stabilize()
    assert c.nodes["1"].raft.log.committed >= ticket.index


def test_removed_voter_no_longer_counts() -> None:
    """§6: after removing a voter, the leader commits with a majority of the remaining
    voters only."""
    c = cluster()
    c.elect("1")
    c.nodes["1"].raft.propose_conf_change(ConfChange(ConfChangeKind.REMOVE_VOTER, "3"))
    c.stabilize()
    c.isolate("3")
    ticket = c.nodes["1"].raft.propose(b"x")
    c.stabilize()
    assert c.nodes["1"].raft.log.committed >= ticket.index
    assert "3" not in c.nodes["1"].raft.progress


def test_removed_leader_steps_down_once_the_change_commits() -> None:
    """§6: "the leader ... steps down (returns to follower state) once it has committed
    the C_new log entry" -- until then it manages a cluster it is not part of."""
    c = cluster()
    c.elect("1")
    c.nodes["1"].raft.propose_conf_change(ConfChange(ConfChangeKind.REMOVE_VOTER, "1"))
    c.process_ready("1")
    assert c.nodes["1"].raft.role is Role.LEADER
    c.stabilize()
    assert c.nodes["1"].raft.role is Role.FOLLOWER
    assert c.nodes["2"].raft.conf.voters == {"2", "3"}


def test_leader_removing_itself_leaves_a_log_others_can_win_with() -> None:
    """Thesis §4.2.2: a leader being removed may still be needed for the next election
    (here: a 2-voter cluster, whose remaining voter needs its vote when it missed the
    commit). The leader takes no more proposals once its removal is in its log, so its
    log never becomes more up-to-date than the survivor's and its vote stays available."""
    c = cluster(voters=["1", "2"])
    c.elect("1")
    c.nodes["1"].raft.propose_conf_change(ConfChange(ConfChangeKind.REMOVE_VOTER, "1"))
    with pytest.raises(ProposalDroppedError):
        c.nodes["1"].raft.propose(b"after-removal")
    c.process_ready("1")
    c.deliver("2")
    c.process_ready("2")
    c.deliver("1")
    c.process_ready("1")  # commits and applies its removal, steps down
    assert c.nodes["1"].raft.role is Role.FOLLOWER
    c.in_flight.clear()  # node 2 never hears that the removal committed
    assert c.nodes["2"].raft.conf.voters == {"1", "2"}
    for _ in range(60):
        c.tick_all()
        c.stabilize()
    assert c.leader() == "2"
    assert c.nodes["2"].raft.conf.voters == {"2"}


def test_learners_replicate_but_never_vote_count_or_campaign() -> None:
    """Thesis §4.2.1: new servers join "as non-voting members": the leader replicates
    entries to them, but they are not considered for majorities. Here they also never
    start elections."""
    c = cluster(learners=["4"])
    c.elect("1")
    c.isolate("2")
    c.isolate("3")
    ticket = c.nodes["1"].raft.propose(b"x")
    c.stabilize()
    assert c.nodes["1"].raft.log.committed < ticket.index, "learner 4 must not count"
    assert c.nodes["4"].raft.log.last_index() >= ticket.index, "learner gets the log"
    c.tick("4", 100)
    assert c.nodes["4"].raft.role is Role.FOLLOWER and c.nodes["4"].raft.term == 2


def test_removed_server_cannot_disrupt_the_cluster() -> None:
    """§6: "servers disregard RequestVote RPCs when they believe a current leader
    exists ... if a server receives a RequestVote RPC within the minimum election timeout
    of hearing from a current leader, it does not update its term or grant its vote." """
    c = cluster(pre_vote=False)
    c.elect("1")
    follower = c.nodes["2"].raft
    follower.step(RequestVote("9", "2", 50, 100, 50))
    assert follower.term == 2 and follower.vote == "1"


# -- §7 Log compaction -------------------------------------------------------------------


def test_snapshot_retains_last_included_index_and_term() -> None:
    """§7: the snapshot keeps "the last included index ... and the last included term
    ... to support the AppendEntries consistency check for the first log entry
    following the snapshot." """
    c = cluster()
    c.elect("1")
    c.nodes["1"].raft.propose(b"x")
    c.stabilize()
    meta = c.nodes["1"].take_snapshot()
    storage = c.nodes["1"].storage
    assert storage.first_index() == meta.index + 1
    assert storage.term(meta.index) == meta.term == 2
    c.nodes["1"].raft.propose(b"y")
    c.stabilize()
    assert [d for _, d in c.nodes["3"].applied] == [b"x", b"y"]


def test_leader_sends_snapshot_in_chunks_to_a_follower_behind_compaction() -> None:
    """§7: "the leader must occasionally send snapshots to followers that lag behind" --
    "the leader uses a new RPC called InstallSnapshot ... divided into chunks", each at
    an offset; each chunk is acknowledged in the Ready that persists it."""
    c = cluster(max_message_bytes=16)
    c.elect("1")
    c.isolate("3")
    c.nodes["1"].raft.propose_batch([b"a" * 10, b"b" * 10, b"c" * 10])
    c.stabilize()
    meta = c.nodes["1"].take_snapshot()
    assert meta.size_bytes > 32
    c.heal()
    c.tick("1")
    chunks: list[InstallSnapshot] = []
    for _ in range(100):
        for node in sorted(c.nodes):
            while (ready := c.process_ready(node)) is not None:
                if node == "3":
                    acks = [m for m in ready.messages if isinstance(m, InstallSnapshotResponse)]
                    assert len(acks) == len(ready.snapshot_chunks)
                    chunks.extend(ready.snapshot_chunks)
        if not c.in_flight:
            break
        c.deliver()
    assert [chunk.offset for chunk in chunks] == list(range(0, meta.size_bytes, 16))
    assert all(chunk.length <= 16 for chunk in chunks) and chunks[-1].done
    assert [d for _, d in c.nodes["3"].applied] == [b"a" * 10, b"b" * 10, b"c" * 10]


def test_follower_keeps_entries_following_a_snapshot_of_its_prefix() -> None:
    """§7: "If instead the follower receives a snapshot that describes a prefix of its
    log ... log entries covered by the snapshot are deleted but entries following the
    snapshot are still valid and must be retained." """
    raft, storage = new_raft("2", log_terms=[1, 1, 1, 1])
    meta = _meta(index=2, term=1)
    raft.step(InstallSnapshot("1", "2", 1, meta, 0, 0, b"", True))
    ready = handle(raft, storage)
    assert ready is not None and ready.snapshot is None
    assert log_terms(raft) == [1, 1, 1, 1] and raft.log.committed == 2


def test_follower_discards_its_log_for_a_snapshot_with_new_information() -> None:
    """§7: "Usually the snapshot will contain new information not already in the
    recipient's log. In this case, the follower discards its entire log." """
    raft, storage = new_raft("2", log_terms=[1, 1, 1])
    meta = _meta(index=5, term=2)
    raft.step(InstallSnapshot("1", "2", 2, meta, 0, 0, b"", True))
    ready = handle(raft, storage)
    assert ready is not None and ready.snapshot == meta
    assert storage.first_index() == 6 and storage.last_index() == 5
    assert raft.log.committed == 5 and raft.log.applied == 5


def test_out_of_order_snapshot_chunk_is_answered_with_the_expected_offset() -> None:
    """§7 / Figure 13: chunks are written in offset order; a chunk at an unexpected
    offset is not persisted and the answer names the offset wanted next."""
    raft, storage = new_raft("2")
    meta = _meta(index=5, term=2, size=30)
    raft.step(InstallSnapshot("1", "2", 2, meta, 0, 10, b"x" * 10, False))
    raft.step(InstallSnapshot("1", "2", 2, meta, 20, 10, b"z" * 10, True))
    ready = handle(raft, storage)
    assert ready is not None and [c.offset for c in ready.snapshot_chunks] == [0]
    answers = [m.next_offset for m in ready.messages if isinstance(m, InstallSnapshotResponse)]
    assert answers == [10, 10]


def _chunks_sent(c: Any, to: str) -> list[int]:
    """Offsets of the InstallSnapshot chunks the leader sends to ``to`` (then dropped)."""
    c.process_ready("1")
    offsets = [m.offset for m in c.in_flight
               if isinstance(m, InstallSnapshot) and m.to_id == to]
    c.in_flight = []
    return offsets


def test_leader_takes_the_followers_offset_as_the_resume_point() -> None:
    """A follower that kept a partial copy across the leader's restart of the transfer
    (or that lost its copy, or answers late) names the offset it wants; the leader
    continues from there instead of repeating a chunk the follower refuses forever
    (simulator seeds 6718 and 13349 livelocked so)."""
    c = cluster(max_message_bytes=16)
    c.elect("1")
    c.isolate("3")
    c.nodes["1"].raft.propose_batch([b"a" * 10, b"b" * 10, b"c" * 10])
    c.stabilize()
    meta = c.nodes["1"].take_snapshot()
    assert meta.size_bytes > 48
    c.heal()
    leader = c.nodes["1"].raft
    first: list[int] = []
    for _ in range(50):  # heartbeats until the leader finds 3 behind its compaction
        c.tick("1")
        for node in sorted(c.nodes):
            c.process_ready(node)
        first = [m.offset for m in c.in_flight if isinstance(m, InstallSnapshot)]
        if first:
            break
        c.deliver()
    c.in_flight = []

    def answer(next_offset: int) -> list[int]:
        leader.step(InstallSnapshotResponse("3", "1", leader.term, meta.id, next_offset,
                                            False))
        return _chunks_sent(c, "3")

    assert first == [0]
    assert answer(32) == [32]  # resume where the follower's partial copy ends
    assert answer(32) == []  # a duplicate of the answer just acted upon
    assert answer(0) == [0]  # the follower lost its copy (or a late answer): restart
    assert answer(48) == [48]  # ...and the follower's next answer corrects a late one
    assert answer(meta.size_bytes + 16) == []  # impossible offsets are ignored


def _meta(*, index: int, term: int, size: int = 0) -> SnapshotMeta:
    return SnapshotMeta(index, term, ConfState(frozenset({"1", "2", "3"})), size, f"s{index}")


# -- §8 Client interaction (thesis §6.4 ReadIndex) ------------------------------------


def test_read_index_waits_for_a_commit_in_the_leaders_term() -> None:
    """§8 / thesis §6.4: "a leader must have the latest information on which entries are
    committed ... Raft handles this by having each leader commit a blank no-op entry";
    until then its commit index may be stale, so reads wait."""
    raft, storage = new_raft(log_terms=[1, 1], term=1)
    elect(raft, storage)
    raft.read_index(b"r")
    raft.tick()
    assert not any(m.read_seq for m in drain(raft, storage) if isinstance(m, Heartbeat))
    ack(raft, "2", 3)  # the no-op commits
    heartbeats = [m for m in drain(raft, storage) if isinstance(m, Heartbeat) and m.read_seq]
    assert len(heartbeats) == 2
    raft.step(HeartbeatResponse("2", "1", raft.term, heartbeats[0].read_seq))
    ready = handle(raft, storage)
    assert ready is not None and [(r.index, r.context) for r in ready.read_states] == [(3, b"r")]


def test_read_index_needs_a_heartbeat_round_with_a_majority() -> None:
    """Thesis §6.4 step 3: "the leader sends a new round of heartbeats and waits for
    their acknowledgments from a majority of the cluster." An answer to an older round
    does not count."""
    raft, storage = new_raft(voters=["1", "2", "3", "4", "5"])
    elect(raft, storage)
    for node in ("2", "3"):
        ack(raft, node, 1)
    drain(raft, storage)
    raft.read_index(b"first")
    raft.read_index(b"second")
    drain(raft, storage)
    raft.step(HeartbeatResponse("2", "1", raft.term, 1))
    raft.step(HeartbeatResponse("3", "1", raft.term, 1))
    ready = handle(raft, storage)
    assert ready is not None and [r.context for r in ready.read_states] == [b"first"]
    raft.step(HeartbeatResponse("4", "1", raft.term, 2))
    assert handle(raft, storage) is not None and not raft.read_states
    raft.step(HeartbeatResponse("5", "1", raft.term, 2))
    ready = handle(raft, storage)
    assert ready is not None and [r.context for r in ready.read_states] == [b"second"]


def test_deposed_leader_never_answers_a_pending_read() -> None:
    """Thesis §6.4: the heartbeat round is what proves no newer leader exists; a leader
    that learns of a higher term before the round completes drops the read."""
    raft, storage = new_raft()
    elect(raft, storage)
    ack(raft, "2", 1)
    drain(raft, storage)
    raft.read_index(b"r")
    raft.step(HeartbeatResponse("2", "1", 5, 1))  # from a newer term
    assert raft.role is Role.FOLLOWER
    raft.step(HeartbeatResponse("3", "1", 5, 1))
    ready = handle(raft, storage)
    assert ready is None or not ready.read_states


def test_proposals_on_a_follower_are_refused_with_a_leader_hint() -> None:
    """§8: "If the client's first choice is not the leader, that server will reject the
    client's request and supply information about the most recent leader it has heard
    from." """
    c = cluster()
    c.elect("1")
    with pytest.raises(NotLeaderError) as info:
        c.nodes["2"].raft.propose(b"x")
    assert info.value.leader_id == "1"


# -- Thesis §9.6 PreVote and CheckQuorum -------------------------------------------------


def test_prevote_does_not_change_anyones_term() -> None:
    """Thesis §9.6: "a candidate would first ask other servers whether its log was
    up-to-date enough to get their vote. Only if the candidate believed it could get
    votes from a majority ... would it increment its term and start a normal
    election." A failed pre-election leaves every term untouched."""
    c = cluster()
    c.elect("1")
    c.isolate("3")
    for _ in range(5):
        c.tick("3", 20)
        c.stabilize()
    assert c.nodes["3"].raft.term == 2 and c.nodes["3"].raft.role is Role.PRE_CANDIDATE
    assert c.nodes["1"].raft.term == 2


def test_prevote_is_refused_to_a_node_with_a_stale_log() -> None:
    """Thesis §9.6: the pre-vote uses the same log rule as a vote (§5.4.1)."""
    raft, storage = new_raft("1", log_terms=[1, 2], term=2)
    raft.step(RequestVote("2", "1", 3, 1, 1, pre_vote=True))
    raft.step(RequestVote("3", "1", 3, 2, 2, pre_vote=True))
    answers = [(m.to_id, m.granted) for m in drain(raft, storage)
               if isinstance(m, RequestVoteResponse)]
    assert answers == [("2", False), ("3", True)]
    assert raft.term == 2 and raft.vote is None


def test_check_quorum_leader_steps_down_without_a_majority() -> None:
    """Thesis §9.6: "a leader [steps] down if an election timeout elapses without a
    successful round of heartbeats to a majority of its cluster." """
    c = cluster()
    c.elect("1")
    c.isolate("1")
    c.tick("1", 10)
    assert c.nodes["1"].raft.role is Role.LEADER
    c.tick("1", 10)
    assert c.nodes["1"].raft.role is Role.FOLLOWER


def test_vote_requests_are_ignored_while_a_leader_is_heard() -> None:
    """Thesis §9.6 / §4.2.3: a server that heard from a leader within the minimum
    election timeout ignores RequestVote (and does not adopt its term)."""
    c = cluster(pre_vote=False)
    c.elect("1")
    c.nodes["3"].raft.campaign()
    c.stabilize()
    assert c.nodes["1"].raft.role is Role.LEADER
    assert c.nodes["2"].raft.term == 2


# -- Thesis §3.10 Leadership transfer ----------------------------------------------------


def test_transfer_catches_the_target_up_then_sends_timeout_now() -> None:
    """Thesis §3.10: "The prior leader sends its log entries to the target server ...
    [then] sends a TimeoutNow request to the target server", which starts an election
    at once; meanwhile the leader stops accepting client requests."""
    c = cluster()
    c.elect("1")
    c.isolate("3")
    c.nodes["1"].raft.propose(b"x")
    c.stabilize()
    c.heal()
    c.nodes["1"].raft.transfer_leadership("3")
    with pytest.raises(Exception, match="transferring"):
        c.nodes["1"].raft.propose(b"y")
    sent: list[object] = []
    for _ in range(20):
        for node in sorted(c.nodes):
            while (ready := c.process_ready(node)) is not None:
                sent.extend(ready.messages)
        if not c.in_flight:
            break
        c.deliver()
    timeout_now = [m for m in sent if isinstance(m, TimeoutNow)]
    assert len(timeout_now) == 1
    position = sent.index(timeout_now[0])
    assert any(isinstance(m, AppendEntries) and m.to_id == "3" for m in sent[:position])
    assert c.leader() == "3"
    assert [d for _, d in c.nodes["3"].applied] == [b"x"]


def test_transfer_is_aborted_after_an_election_timeout() -> None:
    """Thesis §3.10: "If the transfer does not complete within an election timeout, the
    prior leader aborts the transfer and resumes accepting client requests." """
    c = cluster()
    c.elect("1")
    c.isolate("3")
    c.nodes["1"].raft.transfer_leadership("3")
    c.tick("1", 10)
    assert c.nodes["1"].raft.lead_transferee is None
    c.nodes["1"].raft.propose(b"y")


def test_timeout_now_election_overrides_the_leader_lease() -> None:
    """Thesis §3.10 with §4.2.3: voters grant the transfer target's vote although they
    just heard from the current leader (the request is marked as a transfer)."""
    raft, storage = new_raft("2", term=2)
    raft.step(Heartbeat("1", "2", 2, 0))
    drain(raft, storage)
    raft.step(RequestVote("3", "2", 3, 0, 0, transfer=True))
    (answer,) = [m for m in drain(raft, storage) if isinstance(m, RequestVoteResponse)]
    assert answer.granted and raft.term == 3
