"""MessagePack encoding of every node-to-node message.

One frame payload is one message: a MessagePack array whose first element is the type
tag, then the fields in declaration order. The cluster's own messages (``messages.py``)
are msgspec Structs and travel as themselves. Raft messages are the core's frozen
dataclasses; each has a private wire twin here (same fields, tags 1-31), so the core
stays free of msgspec and the wire format is written down in one place rather than
derived from whatever the core's classes look like today.

``decode_peer_message`` validates types, ranges and the core's own invariants
(``SnapshotMeta``, ``ConfState``) and raises ProtocolError for anything else; no other
exception escapes it, whatever the bytes.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeAlias

import msgspec

from edgelite.errors import ProtocolError
from edgelite.protocol.peer.messages import (
    ForwardRequest,
    ForwardResponse,
    Hello,
    HelloAck,
    HelloReject,
    NodeIdText,
    Ping,
    Pong,
    RpcFailure,
    RpcReply,
    RpcRequest,
    Unsigned,
)
from edgelite.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from edgelite.raft.types import ConfState, Entry, EntryKind, SnapshotMeta

__all__ = [
    "CLUSTER_MESSAGE_TYPES",
    "RAFT_MESSAGE_TYPES",
    "ClusterMessage",
    "PeerMessage",
    "decode_peer_message",
    "encode_peer_message",
]

ClusterMessage: TypeAlias = (
    Hello
    | HelloAck
    | HelloReject
    | Ping
    | Pong
    | ForwardRequest
    | ForwardResponse
    | RpcRequest
    | RpcReply
    | RpcFailure
)
PeerMessage: TypeAlias = Message | ClusterMessage

RAFT_MESSAGE_TYPES: Final[tuple[type, ...]] = (
    AppendEntries,
    AppendEntriesResponse,
    RequestVote,
    RequestVoteResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    TimeoutNow,
    ReadIndexRequest,
    ReadIndexResponse,
)
CLUSTER_MESSAGE_TYPES: Final[tuple[type, ...]] = (
    Hello,
    HelloAck,
    HelloReject,
    Ping,
    Pong,
    ForwardRequest,
    ForwardResponse,
    RpcRequest,
    RpcReply,
    RpcFailure,
)

# Entry kinds travel as small integers; the mapping is the wire format, so it is spelled
# out instead of depending on the enum's declaration order.
_KIND_CODES: Final[dict[EntryKind, int]] = {
    EntryKind.NORMAL: 0,
    EntryKind.NOOP: 1,
    EntryKind.CONF_CHANGE: 2,
}
_KINDS: Final[dict[int, EntryKind]] = {code: kind for kind, code in _KIND_CODES.items()}
KindCode = Annotated[int, msgspec.Meta(ge=0, le=len(_KIND_CODES) - 1)]


class _Entry(msgspec.Struct, frozen=True, array_like=True):
    term: Unsigned
    index: Unsigned
    kind: KindCode
    data: bytes


class _ConfState(msgspec.Struct, frozen=True, array_like=True):
    voters: list[NodeIdText]
    learners: list[NodeIdText]


class _SnapshotMeta(msgspec.Struct, frozen=True, array_like=True):
    index: Unsigned
    term: Unsigned
    conf_state: _ConfState
    size_bytes: Unsigned
    id: str


class _AppendEntries(msgspec.Struct, frozen=True, array_like=True, tag=1):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    prev_log_index: Unsigned
    prev_log_term: Unsigned
    entries: list[_Entry]
    commit: Unsigned


class _AppendEntriesResponse(msgspec.Struct, frozen=True, array_like=True, tag=2):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    success: bool
    index: Unsigned
    hint_index: Unsigned
    hint_term: Unsigned


class _RequestVote(msgspec.Struct, frozen=True, array_like=True, tag=3):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    last_log_index: Unsigned
    last_log_term: Unsigned
    pre_vote: bool
    transfer: bool


class _RequestVoteResponse(msgspec.Struct, frozen=True, array_like=True, tag=4):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    granted: bool
    pre_vote: bool


class _Heartbeat(msgspec.Struct, frozen=True, array_like=True, tag=5):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    commit: Unsigned
    read_seq: Unsigned


class _HeartbeatResponse(msgspec.Struct, frozen=True, array_like=True, tag=6):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    read_seq: Unsigned


class _InstallSnapshot(msgspec.Struct, frozen=True, array_like=True, tag=7):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    meta: _SnapshotMeta
    offset: Unsigned
    length: Unsigned
    data: bytes
    done: bool


class _InstallSnapshotResponse(msgspec.Struct, frozen=True, array_like=True, tag=8):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    snapshot_id: str
    next_offset: Unsigned
    done: bool
    last_index: Unsigned


class _TimeoutNow(msgspec.Struct, frozen=True, array_like=True, tag=9):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned


class _ReadIndexRequest(msgspec.Struct, frozen=True, array_like=True, tag=10):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    context: bytes


class _ReadIndexResponse(msgspec.Struct, frozen=True, array_like=True, tag=11):
    from_id: NodeIdText
    to_id: NodeIdText
    term: Unsigned
    index: Unsigned
    context: bytes


_Wire: TypeAlias = (
    _AppendEntries
    | _AppendEntriesResponse
    | _RequestVote
    | _RequestVoteResponse
    | _Heartbeat
    | _HeartbeatResponse
    | _InstallSnapshot
    | _InstallSnapshotResponse
    | _TimeoutNow
    | _ReadIndexRequest
    | _ReadIndexResponse
    | ClusterMessage
)

_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(_Wire)


def _conf_to_wire(conf: ConfState) -> _ConfState:
    return _ConfState(sorted(conf.voters), sorted(conf.learners))


def _meta_to_wire(meta: SnapshotMeta) -> _SnapshotMeta:
    return _SnapshotMeta(meta.index, meta.term, _conf_to_wire(meta.conf_state),
                         meta.size_bytes, meta.id)


def _meta_from_wire(meta: _SnapshotMeta) -> SnapshotMeta:
    conf = ConfState(frozenset(meta.conf_state.voters), frozenset(meta.conf_state.learners))
    return SnapshotMeta(meta.index, meta.term, conf, meta.size_bytes, meta.id)


def _append_to_wire(m: AppendEntries) -> _AppendEntries:
    kinds = _KIND_CODES
    entries = [_Entry(e.term, e.index, kinds[e.kind], e.data) for e in m.entries]
    return _AppendEntries(m.from_id, m.to_id, m.term, m.prev_log_index, m.prev_log_term,
                          entries, m.commit)


def _append_from_wire(w: _AppendEntries) -> AppendEntries:
    kinds = _KINDS
    entries = tuple(Entry(e.term, e.index, kinds[e.kind], e.data) for e in w.entries)
    return AppendEntries(w.from_id, w.to_id, w.term, w.prev_log_index, w.prev_log_term,
                         entries, w.commit)


def _snapshot_to_wire(m: InstallSnapshot) -> _InstallSnapshot:
    return _InstallSnapshot(m.from_id, m.to_id, m.term, _meta_to_wire(m.meta), m.offset,
                            m.length, m.data, m.done)


def _snapshot_from_wire(w: _InstallSnapshot) -> InstallSnapshot:
    if len(w.data) not in (0, w.length):
        raise ProtocolError(
            f"snapshot chunk at offset {w.offset} says length {w.length} "
            f"but carries {len(w.data)} bytes"
        )
    return InstallSnapshot(w.from_id, w.to_id, w.term, _meta_from_wire(w.meta), w.offset,
                           w.length, w.data, w.done)


_PLAIN_TWINS: Final[dict[type, type[msgspec.Struct]]] = {
    AppendEntriesResponse: _AppendEntriesResponse,
    RequestVote: _RequestVote,
    RequestVoteResponse: _RequestVoteResponse,
    Heartbeat: _Heartbeat,
    HeartbeatResponse: _HeartbeatResponse,
    InstallSnapshotResponse: _InstallSnapshotResponse,
    TimeoutNow: _TimeoutNow,
    ReadIndexRequest: _ReadIndexRequest,
    ReadIndexResponse: _ReadIndexResponse,
}
_NESTED_TWINS: Final[dict[type, type[msgspec.Struct]]] = {
    AppendEntries: _AppendEntries,
    InstallSnapshot: _InstallSnapshot,
}

# A twin must list exactly its message's fields, in order: if the core grows a field,
# importing this module fails instead of silently dropping it on the wire.
for _domain, _twin in {**_PLAIN_TWINS, **_NESTED_TWINS}.items():
    _names = tuple(field.name for field in dataclasses.fields(_domain))
    assert _names == _twin.__struct_fields__, (_domain.__name__, _names)
for _domain, _twin in ((Entry, _Entry), (SnapshotMeta, _SnapshotMeta)):
    _names = tuple(field.name for field in dataclasses.fields(_domain))
    assert _names == _twin.__struct_fields__, (_domain.__name__, _names)


def _plain_converter(names: tuple[str, ...], target: type) -> Callable[[Any], Any]:
    # Messages without nested values map field for field onto their twin (both ways).
    getter = operator.attrgetter(*names)

    def convert(message: Any) -> Any:
        return target(*getter(message))

    return convert


def _identity(message: Any) -> Any:
    return message


_TO_WIRE: Final[dict[type, Callable[[Any], Any]]] = {
    AppendEntries: _append_to_wire,
    InstallSnapshot: _snapshot_to_wire,
    **{domain: _plain_converter(twin.__struct_fields__, twin)
       for domain, twin in _PLAIN_TWINS.items()},
    **{kind: _identity for kind in CLUSTER_MESSAGE_TYPES},
}

_FROM_WIRE: Final[dict[type, Callable[[Any], PeerMessage]]] = {
    _AppendEntries: _append_from_wire,
    _InstallSnapshot: _snapshot_from_wire,
    **{twin: _plain_converter(twin.__struct_fields__, domain)
       for domain, twin in _PLAIN_TWINS.items()},
    **{kind: _identity for kind in CLUSTER_MESSAGE_TYPES},
}


def encode_peer_message(message: PeerMessage) -> bytes:
    """The payload bytes of ``message`` (put them in a frame with ``encode_frame``).

    Raises ProtocolError if ``message`` is not a peer message type or holds a value
    MessagePack cannot carry (an integer beyond 64 bits, an unsupported object inside
    ``ForwardRequest.identity``).
    """
    to_wire = _TO_WIRE.get(type(message))
    if to_wire is None:
        raise ProtocolError(f"{type(message).__name__} is not a peer message type")
    try:
        return _ENCODER.encode(to_wire(message))
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise ProtocolError(f"cannot encode {type(message).__name__}: {exc}") from exc


def decode_peer_message(payload: bytes | bytearray | memoryview) -> PeerMessage:
    """Inverse of :func:`encode_peer_message`; raises ProtocolError and nothing else."""
    try:
        wire = _DECODER.decode(payload)
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: msgspec lets invalid
        raise ProtocolError(f"malformed peer message: {exc}") from exc  # UTF-8 escape
    except RecursionError as exc:
        raise ProtocolError("malformed peer message: nested too deeply") from exc
    try:
        return _FROM_WIRE[type(wire)](wire)
    except ValueError as exc:  # the core's own invariants (SnapshotMeta, ConfState)
        raise ProtocolError(f"invalid {type(wire).__name__.lstrip('_')}: {exc}") from exc
