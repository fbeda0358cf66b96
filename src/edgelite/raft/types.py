"""Value types of the Raft core: log entries, persistent and volatile state, configurations.

Every type here is a frozen, slotted dataclass (or an enum): values travel between the
core, the application and the network, and must never change underneath anyone.

Index and term conventions (as in the Raft paper): indexes and terms are ``int``;
index 0 and term 0 mean "nothing" (the empty log's last index is 0, whose term is 0).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from edgelite.errors import ProtocolError

__all__ = [
    "ENTRY_OVERHEAD_BYTES",
    "ConfChange",
    "ConfChangeKind",
    "ConfState",
    "Entry",
    "EntryKind",
    "HardState",
    "NodeId",
    "ProposalTicket",
    "ReadState",
    "Role",
    "SnapshotMeta",
    "SoftState",
    "decode_conf_change",
    "encode_conf_change",
    "entry_size_bytes",
]

NodeId = str

# A rough per-entry framing cost (term, index, kind, length) used when bounding message
# and Ready sizes, so that a flood of empty entries is bounded too.
ENTRY_OVERHEAD_BYTES = 24


class EntryKind(enum.Enum):
    """What an entry's ``data`` means."""

    NORMAL = "normal"  # opaque application command
    NOOP = "noop"  # a new leader's empty entry; commits the leader's term (paper §5.4.2)
    CONF_CHANGE = "conf_change"  # data is ``encode_conf_change(cc)``


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. Invariant: ``term >= 1`` and ``index >= 1`` for real entries."""

    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


def entry_size_bytes(entry: Entry) -> int:
    """Size used for every byte bound in the core (message size, Ready size)."""
    return len(entry.data) + ENTRY_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class HardState:
    """State that must be on stable storage before any message that depends on it is sent.

    ``vote`` is the candidate voted for in ``term`` (None: no vote yet in this term).
    ``commit`` is persisted only as an optimisation for restarts; losing it is safe.
    """

    term: int = 0
    vote: NodeId | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ConfState:
    """A cluster configuration. Invariant: voters and learners are disjoint."""

    voters: frozenset[NodeId] = field(default_factory=frozenset)
    learners: frozenset[NodeId] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        overlap = self.voters & self.learners
        if overlap:
            raise ValueError(f"nodes {sorted(overlap)} are both voter and learner")

    @property
    def members(self) -> frozenset[NodeId]:
        return self.voters | self.learners

    def describe(self) -> str:
        voters = ",".join(sorted(self.voters))
        text = f"voters=({voters})"
        if self.learners:
            text += f" learners=({','.join(sorted(self.learners))})"
        return text


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Metadata of an application snapshot covering the log up to ``index`` inclusive.

    ``conf_state`` is the configuration in force after applying ``index``; ``id``
    identifies the bytes (the runtime uses it to find them); ``size_bytes`` is their
    length, which the leader splits into chunks.
    """

    index: int
    term: int
    conf_state: ConfState
    size_bytes: int = 0
    id: str = ""

    def __post_init__(self) -> None:
        if self.index < 0 or self.term < 0 or self.size_bytes < 0:
            raise ValueError(f"snapshot meta with a negative field: {self!r}")
        if (self.index == 0) != (self.term == 0):
            raise ValueError(f"snapshot index {self.index} with term {self.term}")


class ConfChangeKind(enum.Enum):
    ADD_VOTER = "add-voter"
    REMOVE_VOTER = "remove-voter"
    ADD_LEARNER = "add-learner"
    REMOVE_LEARNER = "remove-learner"
    PROMOTE_LEARNER = "promote-learner"


_CONF_CHANGE_CODES: tuple[ConfChangeKind, ...] = tuple(ConfChangeKind)
_CONF_CHANGE_HEADER = struct.Struct(">BBHI")  # version, kind, id length, context length
_CONF_CHANGE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ConfChange:
    """One single-server membership change (Raft thesis §4.1)."""

    kind: ConfChangeKind
    node_id: NodeId
    context: bytes = b""

    def __post_init__(self) -> None:
        if not self.node_id:
            raise ValueError("a conf change needs a node id")


def encode_conf_change(cc: ConfChange) -> bytes:
    """Deterministic bytes for ``cc`` (the data of a CONF_CHANGE entry)."""
    node = cc.node_id.encode("utf-8")
    header = _CONF_CHANGE_HEADER.pack(
        _CONF_CHANGE_VERSION, _CONF_CHANGE_CODES.index(cc.kind), len(node), len(cc.context)
    )
    return header + node + cc.context


def decode_conf_change(data: bytes) -> ConfChange:
    """Inverse of :func:`encode_conf_change`; raises ProtocolError on malformed data."""
    size = _CONF_CHANGE_HEADER.size
    if len(data) < size:
        raise ProtocolError(f"conf change of {len(data)} bytes is shorter than its header")
    version, code, node_len, ctx_len = _CONF_CHANGE_HEADER.unpack_from(data)
    if version != _CONF_CHANGE_VERSION:
        raise ProtocolError(f"conf change encoding version {version} is unknown")
    if code >= len(_CONF_CHANGE_CODES):
        raise ProtocolError(f"conf change kind code {code} is unknown")
    if len(data) != size + node_len + ctx_len:
        raise ProtocolError(
            f"conf change is {len(data)} bytes, header says {size + node_len + ctx_len}"
        )
    try:
        node = data[size : size + node_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("conf change node id is not UTF-8") from exc
    if not node:
        raise ProtocolError("conf change without a node id")
    context = data[size + node_len :]
    return ConfChange(_CONF_CHANGE_CODES[code], node, bytes(context))


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth reporting (not persisted): who leads, and our role."""

    leader_id: NodeId | None
    role: Role


@dataclass(frozen=True, slots=True)
class ReadState:
    """A read with ``context`` is linearizable once the state machine applied ``index``."""

    index: int
    context: bytes


@dataclass(frozen=True, slots=True)
class ProposalTicket:
    """Where a proposal went. It committed iff the committed entry at ``index`` has
    ``term``; any other term at that index means it was lost for good."""

    term: int
    index: int
