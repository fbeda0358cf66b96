"""Property tests: the quorum and log arithmetic against deliberately simple twins."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from edgelite.errors import ProtocolError
from edgelite.raft import ConfChange, ConfChangeKind, decode_conf_change, encode_conf_change
from edgelite.raft.progress import Inflights
from edgelite.raft.quorum import VoteResult, committed_index, vote_result

NODES = st.sampled_from([str(n) for n in range(1, 8)])
VOTERS = st.frozensets(NODES, min_size=1, max_size=7)


def twin_committed_index(voters: frozenset[str], match: dict[str, int]) -> int:
    """The largest index i such that more than half of the voters have match >= i,
    found by trying every candidate index (0 always qualifies)."""
    candidates = {0, *match.values()}
    best = 0
    for index in candidates:
        holders = sum(1 for voter in voters if match.get(voter, 0) >= index)
        if 2 * holders > len(voters):
            best = max(best, index)
    return best


@given(VOTERS, st.dictionaries(NODES, st.integers(0, 50)))
def test_committed_index_matches_brute_force(voters: frozenset[str], match: dict[str, int]) -> None:
    assert committed_index(voters, match) == twin_committed_index(voters, match)


@given(VOTERS, st.dictionaries(NODES, st.integers(0, 50)), NODES, st.integers(0, 50))
def test_non_voters_never_change_the_commit_index(
    voters: frozenset[str], match: dict[str, int], learner: str, index: int
) -> None:
    if learner in voters:
        return
    assert committed_index(voters, {**match, learner: index}) == committed_index(voters, match)


def twin_vote_result(voters: frozenset[str], votes: dict[str, bool]) -> VoteResult:
    """Enumerate every way the missing voters could still answer."""
    missing = [voter for voter in voters if voter not in votes]
    outcomes = set()
    for mask in range(2 ** len(missing)):
        final = {v: votes[v] for v in voters if v in votes}
        final.update({v: bool(mask >> k & 1) for k, v in enumerate(missing)})
        outcomes.add(2 * sum(final.values()) > len(voters))
    if outcomes == {True}:
        return VoteResult.WON
    if outcomes == {False}:
        return VoteResult.LOST
    return VoteResult.PENDING


@given(VOTERS, st.dictionaries(NODES, st.booleans()))
def test_vote_result_matches_enumeration(voters: frozenset[str], votes: dict[str, bool]) -> None:
    assert vote_result(voters, votes) == twin_vote_result(voters, votes)


@given(st.lists(st.tuples(st.sampled_from(["add", "free", "free_first"]), st.integers(0, 40))))
@settings(deadline=None)
def test_inflights_behave_like_a_bounded_queue(ops: list[tuple[str, int]]) -> None:
    inflights = Inflights(5)
    model: deque[int] = deque()
    last = 0
    for op, value in ops:
        if op == "add":
            if len(model) == 5:
                continue
            last += value + 1
            inflights.add(last)
            model.append(last)
        elif op == "free":
            inflights.free_le(value * 3)
            while model and model[0] <= value * 3:
                model.popleft()
        else:
            inflights.free_first()
            if model:
                model.popleft()
        assert len(inflights) == len(model)
        assert inflights.full() == (len(model) == 5)


KINDS = st.sampled_from(list(ConfChangeKind))


@given(KINDS, st.text(min_size=1, max_size=20), st.binary(max_size=40))
def test_conf_change_encoding_round_trips(kind: ConfChangeKind, node: str, ctx: bytes) -> None:
    cc = ConfChange(kind, node, ctx)
    assert decode_conf_change(encode_conf_change(cc)) == cc


@given(st.binary(max_size=64))
def test_conf_change_decoding_rejects_garbage_cleanly(data: bytes) -> None:
    try:
        cc = decode_conf_change(data)
    except ProtocolError:
        return
    assert encode_conf_change(cc) == data
