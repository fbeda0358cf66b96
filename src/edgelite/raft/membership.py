"""Single-server membership changes (Raft thesis §4.1) as pure functions on ConfState.

A change takes effect on a node when that node *applies* the committed entry (the
etcd-io/raft choice): every configuration a node uses is therefore committed, and
consecutive configurations differ by one server, so any two majorities of adjacent
configurations intersect. ``docs/design/raft.md`` explains why this is safe together
with the "one change at a time, only after committing an entry of your own term" rule.
"""

from __future__ import annotations

from edgelite.raft.errors import InvalidConfChangeError
from edgelite.raft.types import ConfChange, ConfChangeKind, ConfState

__all__ = ["apply_change", "validate_change"]


def validate_change(conf: ConfState, cc: ConfChange) -> None:
    """Raise InvalidConfChangeError if ``cc`` makes no sense for ``conf``."""
    node = cc.node_id
    kind = cc.kind
    if kind is ConfChangeKind.ADD_VOTER and node in conf.members:
        role = "voter" if node in conf.voters else "learner (promote it instead)"
        raise InvalidConfChangeError(f"cannot add voter {node}: already a {role}")
    if kind is ConfChangeKind.ADD_LEARNER and node in conf.members:
        raise InvalidConfChangeError(f"cannot add learner {node}: already a member")
    if kind is ConfChangeKind.REMOVE_VOTER:
        if node not in conf.voters:
            raise InvalidConfChangeError(f"cannot remove voter {node}: not a voter")
        if len(conf.voters) == 1:
            raise InvalidConfChangeError(f"cannot remove {node}: it is the last voter")
    if kind is ConfChangeKind.REMOVE_LEARNER and node not in conf.learners:
        raise InvalidConfChangeError(f"cannot remove learner {node}: not a learner")
    if kind is ConfChangeKind.PROMOTE_LEARNER and node not in conf.learners:
        raise InvalidConfChangeError(f"cannot promote {node}: not a learner")


def apply_change(conf: ConfState, cc: ConfChange) -> ConfState:
    """The configuration after ``cc``; raises InvalidConfChangeError like
    :func:`validate_change`."""
    validate_change(conf, cc)
    voters, learners, node = conf.voters, conf.learners, cc.node_id
    if cc.kind is ConfChangeKind.ADD_VOTER:
        return ConfState(voters | {node}, learners)
    if cc.kind is ConfChangeKind.REMOVE_VOTER:
        return ConfState(voters - {node}, learners)
    if cc.kind is ConfChangeKind.ADD_LEARNER:
        return ConfState(voters, learners | {node})
    if cc.kind is ConfChangeKind.REMOVE_LEARNER:
        return ConfState(voters, learners - {node})
    return ConfState(voters | {node}, learners - {node})
