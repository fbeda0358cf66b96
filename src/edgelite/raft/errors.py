"""Raft-specific exceptions, each a branch of the tree in :mod:`edgelite.errors`.

::

    StorageError
    ├── CompactedError             the index is behind the storage's first index
    └── UnavailableError           the index is past the storage's last index
    ClusterError
    ├── NotLeaderError             (edgelite.errors) proposals on a non-leader
    ├── ProposalDroppedError       the leader refused a proposal (transfer, backlog)
    ├── ConfChangeError            a membership change cannot be proposed
    │   ├── ConfChangePendingError another change is not yet applied
    │   └── InvalidConfChangeError the change makes no sense for the configuration
    ├── LeadershipTransferError    a transfer target is not a voter / unknown
    └── ClusterUnavailableError
        └── NoLeaderError          no leader is known to forward a request to

Misuse of the API by the caller (``advance`` without ``ready``) is our bug and raises
``RuntimeError`` / fails an assertion instead.
"""

from __future__ import annotations

from edgelite.errors import ClusterError, ClusterUnavailableError, StorageError

__all__ = [
    "CompactedError",
    "ConfChangeError",
    "ConfChangePendingError",
    "InvalidConfChangeError",
    "LeadershipTransferError",
    "NoLeaderError",
    "ProposalDroppedError",
    "UnavailableError",
]


class CompactedError(StorageError):
    """The requested log index was compacted into a snapshot."""

    code = "RAFT_COMPACTED"


class UnavailableError(StorageError):
    """The requested log index is past the last index in storage."""

    code = "RAFT_UNAVAILABLE"


class ProposalDroppedError(ClusterError):
    """The leader refused the proposal; it never entered the log (safe to retry)."""

    code = "PROPOSAL_DROPPED"


class ConfChangeError(ClusterError):
    code = "CONF_CHANGE_REFUSED"


class ConfChangePendingError(ConfChangeError):
    """A membership change is already in the log and not yet applied, or the leader has
    not yet committed an entry of its own term (thesis §4.1, Ongaro 2015 erratum)."""

    code = "CONF_CHANGE_PENDING"


class InvalidConfChangeError(ConfChangeError):
    """E.g. adding an existing voter, removing the last voter, promoting a non-learner."""

    code = "CONF_CHANGE_INVALID"


class LeadershipTransferError(ClusterError):
    code = "TRANSFER_REFUSED"


class NoLeaderError(ClusterUnavailableError):
    """No leader is known, so the request cannot be forwarded."""

    code = "NO_LEADER"
