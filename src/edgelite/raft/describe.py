"""Deterministic one-line text for entries, messages and Ready (logs and golden tests).

The wording is part of the golden transcripts in ``tests/raft/scripts``: change it only
together with them (``pytest tests/raft --rewrite``).
"""

from __future__ import annotations

from edgelite.errors import ProtocolError
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
from edgelite.raft.ready import Ready
from edgelite.raft.types import (
    Entry,
    EntryKind,
    HardState,
    ReadState,
    SnapshotMeta,
    SoftState,
    decode_conf_change,
)

__all__ = [
    "describe_entries",
    "describe_entry",
    "describe_hard_state",
    "describe_message",
    "describe_read_state",
    "describe_ready",
    "describe_snapshot",
    "describe_soft_state",
]

_DATA_SHOWN_BYTES = 32


def _data(data: bytes) -> str:
    """Short printable ASCII in quotes, other short data as hex, long data as a size."""
    if len(data) > _DATA_SHOWN_BYTES:
        return f"<{len(data)} bytes>"
    text = data.decode("latin-1")
    if text.isprintable() and data.isascii() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return "0x" + data.hex()


def describe_entry(entry: Entry) -> str:
    """``term/index KIND payload``, e.g. ``2/7 NORMAL "x=1"``."""
    head = f"{entry.term}/{entry.index}"
    if entry.kind is EntryKind.NOOP:
        return f"{head} NOOP"
    if entry.kind is EntryKind.CONF_CHANGE:
        try:
            cc = decode_conf_change(entry.data)
        except ProtocolError:
            return f"{head} CONF_CHANGE <undecodable {len(entry.data)} bytes>"
        return f"{head} CONF_CHANGE {cc.kind.value} {cc.node_id}"
    return f"{head} NORMAL {_data(entry.data)}"


def describe_entries(entries: tuple[Entry, ...] | list[Entry]) -> str:
    return "[" + ", ".join(describe_entry(entry) for entry in entries) + "]"


def describe_snapshot(meta: SnapshotMeta) -> str:
    return (
        f"snapshot index={meta.index} term={meta.term} size={meta.size_bytes} "
        f"id={meta.id!r} {meta.conf_state.describe()}"
    )


def describe_hard_state(hard_state: HardState) -> str:
    return f"term={hard_state.term} vote={hard_state.vote or '-'} commit={hard_state.commit}"


def describe_soft_state(soft_state: SoftState) -> str:
    return f"role={soft_state.role.value} leader={soft_state.leader_id or '-'}"


def _describe_body(m: Message) -> str:
    match m:
        case AppendEntries():
            text = f"prev={m.prev_log_term}/{m.prev_log_index} commit={m.commit}"
            if m.entries:
                text += " entries=" + describe_entries(m.entries)
            return text
        case AppendEntriesResponse():
            if m.success:
                return f"ok index={m.index}"
            return f"reject index={m.index} hint={m.hint_term}/{m.hint_index}"
        case RequestVote():
            flags = (" pre" if m.pre_vote else "") + (" transfer" if m.transfer else "")
            return f"last={m.last_log_term}/{m.last_log_index}{flags}"
        case RequestVoteResponse():
            return ("granted" if m.granted else "rejected") + (" pre" if m.pre_vote else "")
        case Heartbeat():
            return f"commit={m.commit}" + (f" read={m.read_seq}" if m.read_seq else "")
        case HeartbeatResponse():
            return f"read={m.read_seq}" if m.read_seq else ""
        case InstallSnapshot():
            data = f" data={len(m.data)}B" if m.data else ""
            done = " done" if m.done else ""
            return (
                f"snap={m.meta.term}/{m.meta.index} id={m.meta.id!r} "
                f"offset={m.offset} length={m.length}{data}{done}"
            )
        case InstallSnapshotResponse():
            done = f" done last={m.last_index}" if m.done else ""
            return f"id={m.snapshot_id!r} next={m.next_offset}{done}"
        case TimeoutNow():
            return ""
        case ReadIndexRequest():
            return f"ctx={_data(m.context)}"
        case ReadIndexResponse():
            return f"index={m.index} ctx={_data(m.context)}"
    raise AssertionError(f"unknown message {m!r}")


def describe_message(m: Message) -> str:
    """``from->to Type term=T details``."""
    body = _describe_body(m)
    text = f"{m.from_id}->{m.to_id} {type(m).__name__} term={m.term}"
    return f"{text} {body}" if body else text


def describe_read_state(read_state: ReadState) -> str:
    return f"index={read_state.index} ctx={_data(read_state.context)}"


def describe_ready(ready: Ready) -> str:
    """Multi-line text, one item per line; ``Ready(empty)`` for an empty Ready."""
    if ready.is_empty():
        return "Ready(empty)"
    lines = ["Ready" + (" must_sync" if ready.must_sync else "") + ":"]
    if ready.soft_state is not None:
        lines.append("  soft: " + describe_soft_state(ready.soft_state))
    if ready.hard_state is not None:
        lines.append("  hard: " + describe_hard_state(ready.hard_state))
    for chunk in ready.snapshot_chunks:
        lines.append(
            f"  chunk: id={chunk.meta.id!r} offset={chunk.offset} length={chunk.length}"
            + (" done" if chunk.done else "")
        )
    if ready.snapshot is not None:
        lines.append("  install: " + describe_snapshot(ready.snapshot))
    if ready.entries:
        lines.append("  entries:")
        lines.extend("    " + describe_entry(entry) for entry in ready.entries)
    if ready.committed_entries:
        lines.append("  committed:")
        lines.extend("    " + describe_entry(entry) for entry in ready.committed_entries)
    if ready.messages:
        lines.append("  messages:")
        lines.extend("    " + describe_message(message) for message in ready.messages)
    if ready.read_states:
        lines.append("  read_states:")
        lines.extend("    " + describe_read_state(rs) for rs in ready.read_states)
    return "\n".join(lines)
