"""Majority arithmetic, as pure functions over a set of voters.

Only voters count: learners never appear in ``voters``. These functions are checked
against brute-force twins in ``tests/raft/test_quorum_properties.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping

from edgelite.raft.types import NodeId

__all__ = ["VoteResult", "committed_index", "quorum_size", "vote_result"]


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def quorum_size(voter_count: int) -> int:
    """Smallest majority of ``voter_count`` voters."""
    return voter_count // 2 + 1


def committed_index(voters: Collection[NodeId], match: Mapping[NodeId, int]) -> int:
    """The highest index present on a majority of ``voters`` (missing voters count as 0).

    With no voters there is no majority, and nothing is committed: 0.
    """
    if not voters:
        return 0
    indexes = sorted((match.get(voter, 0) for voter in voters), reverse=True)
    return indexes[quorum_size(len(indexes)) - 1]


def vote_result(voters: Collection[NodeId], votes: Mapping[NodeId, bool]) -> VoteResult:
    """WON once a majority of ``voters`` granted, LOST once a majority can no longer be
    reached, else PENDING. Votes from non-voters are ignored."""
    if not voters:
        return VoteResult.LOST
    granted = sum(1 for voter in voters if votes.get(voter) is True)
    rejected = sum(1 for voter in voters if votes.get(voter) is False)
    needed = quorum_size(len(voters))
    if granted >= needed:
        return VoteResult.WON
    if len(voters) - rejected < needed:
        return VoteResult.LOST
    return VoteResult.PENDING
