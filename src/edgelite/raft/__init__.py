"""edgelite.raft: a pure Raft consensus core (etcd-io/raft's shape).

Drive it with ``tick``/``step``/``propose``; handle each ``Ready`` as its docstring
says; call ``advance``. See ``docs/design/raft.md``.
"""

from edgelite.raft import describe, messages
from edgelite.raft.config import RaftConfig
from edgelite.raft.core import Raft, RandomSource
from edgelite.raft.errors import (
    CompactedError,
    ConfChangeError,
    ConfChangePendingError,
    InvalidConfChangeError,
    LeadershipTransferError,
    NoLeaderError,
    ProposalDroppedError,
    UnavailableError,
)
from edgelite.raft.messages import Message, fill_snapshot_chunk
from edgelite.raft.ready import ProgressStatus, Ready, Status
from edgelite.raft.storage import MemoryStorage, Storage, bootstrap_entries
from edgelite.raft.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    NodeId,
    ProposalTicket,
    ReadState,
    Role,
    SnapshotMeta,
    SoftState,
    decode_conf_change,
    encode_conf_change,
)

__all__ = [
    "CompactedError",
    "ConfChange",
    "ConfChangeError",
    "ConfChangeKind",
    "ConfChangePendingError",
    "ConfState",
    "Entry",
    "EntryKind",
    "HardState",
    "InvalidConfChangeError",
    "LeadershipTransferError",
    "MemoryStorage",
    "Message",
    "NoLeaderError",
    "NodeId",
    "ProgressStatus",
    "ProposalDroppedError",
    "ProposalTicket",
    "Raft",
    "RaftConfig",
    "RandomSource",
    "ReadState",
    "Ready",
    "Role",
    "SnapshotMeta",
    "SoftState",
    "Status",
    "Storage",
    "UnavailableError",
    "bootstrap_entries",
    "decode_conf_change",
    "describe",
    "encode_conf_change",
    "fill_snapshot_chunk",
    "messages",
]
