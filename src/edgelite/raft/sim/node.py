"""One simulated member: a Raft core, its durable storage, and the Ready loop.

Durable (survives a crash): the :class:`MemoryStorage` (log, hard state, snapshot
metadata), the application snapshots by id, and received snapshot chunks.
Volatile (lost on a crash): the Raft object, the key/value store, pending reads.
A restart rebuilds the store from the newest durable snapshot and the core from
storage, exactly as a real process would after power loss: nothing that was only
in a Ready not yet persisted survives.

:meth:`SimNode.handle_ready` follows the Ready contract step by step, and can stop
("crash") after any step, which is how the simulator loses unpersisted state,
unsent messages and unapplied entries.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edgelite.raft.config import RaftConfig
from edgelite.raft.core import Raft
from edgelite.raft.describe import describe_entry, describe_ready
from edgelite.raft.messages import (
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    RequestVoteResponse,
    fill_snapshot_chunk,
)
from edgelite.raft.ready import Ready
from edgelite.raft.sim.kv import KvStore, decode_command
from edgelite.raft.sim.oracle import InvariantViolation, Oracle, durable_term
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import (
    ConfChange,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Role,
    SnapshotMeta,
    decode_conf_change,
)

__all__ = ["CrashPoint", "NodeHost", "NodeTuning", "SimNode"]

_BLOBS_KEPT = 4


class CrashPoint(enum.Enum):
    """Where in the Ready loop a crash strikes."""

    BEFORE_PERSIST = "before-persist"
    AFTER_PERSIST = "after-persist"
    MID_SEND = "mid-send"  # some of the Ready's messages left, the rest did not
    AFTER_SEND = "after-send"


class NodeHost(Protocol):
    """What a node needs from the simulation around it."""

    oracle: Oracle
    verbose: bool
    rng: random.Random

    def send(self, message: Message) -> None: ...

    def log(self, line: str) -> None: ...

    def count(self, name: str) -> None: ...

    def while_ready_outstanding(self, node: SimNode) -> None: ...

    def storages(self) -> dict[str, MemoryStorage]: ...

    def after_apply(self, node: SimNode) -> None: ...

    def on_conf_applied(self, node: SimNode, cc: ConfChange, index: int) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeTuning:
    """Core settings shared by all nodes of one simulated cluster."""

    election_timeout_ticks: int = 10
    heartbeat_interval_ticks: int = 1
    max_message_bytes: int = 512
    max_inflight_messages: int = 4
    max_committed_bytes_per_ready: int = 4096
    pre_vote: bool = True
    check_quorum: bool = True


class SimNode:
    """A node; ``raft is None`` while it is crashed."""

    def __init__(
        self, node_id: str, storage: MemoryStorage, host: NodeHost, tuning: NodeTuning,
        persist_before_send: bool = True,
    ) -> None:
        self.node_id = node_id
        self.host = host
        self.tuning = tuning
        self.storage = storage
        # Durable application state.
        self.snapshot_blobs: dict[str, bytes] = {}
        self.chunks: dict[str, dict[int, bytes]] = {}
        # Volatile state (rebuilt by restart()).
        self.raft: Raft | None = None
        self.kv = KvStore()
        self.conf = ConfState()
        # The configuration before the last change applied: the core may have counted
        # a quorum in it while that change was committed but not yet applied.
        self.conf_before = self.conf
        self.role = Role.FOLLOWER
        self.commit = 0
        self.read_waits: dict[bytes, int] = {}
        self.incarnation = 0
        self.snapshot_seq = 0
        # Only the "app bug" variant in the tests turns this off.
        self.persist_before_send = persist_before_send

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self.raft is not None

    def restart(self, rng: random.Random) -> None:
        """(Re)build the volatile state from durable state only."""
        assert self.raft is None, f"{self.node_id} is already running"
        snap = self.storage.snapshot_meta()
        self.kv = KvStore()
        self.conf = self.storage.initial_state()[1]
        if snap is not None:
            self.kv, _ = KvStore.restore(self.snapshot_blobs[snap.id])
            assert self.kv.applied == snap.index
            self.conf = snap.conf_state
        self.conf_before = self.conf
        self.commit = self.storage.hard_state.commit
        self.role = Role.FOLLOWER
        self.read_waits = {}
        self.incarnation += 1
        config = RaftConfig(
            node_id=self.node_id,
            election_timeout_ticks=self.tuning.election_timeout_ticks,
            heartbeat_interval_ticks=self.tuning.heartbeat_interval_ticks,
            max_message_bytes=self.tuning.max_message_bytes,
            max_inflight_messages=self.tuning.max_inflight_messages,
            max_committed_bytes_per_ready=self.tuning.max_committed_bytes_per_ready,
            pre_vote=self.tuning.pre_vote,
            check_quorum=self.tuning.check_quorum,
            applied=self.kv.applied,
        )
        self.raft = Raft(config, self.storage, random.Random(rng.randrange(1 << 32)))

    def crash(self) -> None:
        """Lose everything volatile; durable state stays as it is."""
        self.raft = None
        self.read_waits = {}
        self.role = Role.FOLLOWER

    # -- the Ready loop -----------------------------------------------------------------

    def handle_ready(self, crash_at: CrashPoint | None = None) -> bool:
        """Process one Ready if there is one; returns False once the node crashed."""
        raft = self.raft
        assert raft is not None
        if not raft.has_ready():
            return True
        ready = raft.ready()
        if self.host.verbose:
            text = describe_ready(ready).replace("\n", "\n    ")
            self.host.log(f"{self.node_id} {text}")
        if crash_at is CrashPoint.BEFORE_PERSIST:
            return self._crash_here(crash_at)
        if not self.persist_before_send:
            self._send_all(ready)
        self._persist(ready)
        if crash_at is CrashPoint.AFTER_PERSIST:
            return self._crash_here(crash_at)
        if crash_at is CrashPoint.MID_SEND:
            self._send_all(ready, keep=lambda: self.host.rng.random() < 0.5)
            return self._crash_here(crash_at)
        if self.persist_before_send:
            self._send_all(ready)
        if crash_at is CrashPoint.AFTER_SEND:
            return self._crash_here(crash_at)
        # The API allows step() while a Ready is outstanding, as an asynchronous
        # runtime does while it applies; the host may deliver messages here.
        self.host.while_ready_outstanding(self)
        self._apply_all(ready)
        for read in ready.read_states:
            self.read_waits[read.context] = read.index
        raft.advance(ready)
        self.host.after_apply(self)
        return True

    def _crash_here(self, point: CrashPoint) -> bool:
        self.host.log(f"{self.node_id} CRASH {point.value}")
        self.host.count(f"crash_{point.name.lower()}")
        self.crash()
        return False

    # -- step 1: persist ----------------------------------------------------------------

    def _persist(self, ready: Ready) -> None:
        oracle = self.host.oracle
        for chunk in ready.snapshot_chunks:
            self.chunks.setdefault(chunk.meta.id, {})[chunk.offset] = chunk.data
        if ready.snapshot is not None:
            hs = ready.hard_state or self.storage.hard_state
            self._install_snapshot(ready.snapshot, hs.term)
        if ready.entries:
            self._append(ready.entries)
        before = self.storage.hard_state
        if ready.hard_state is not None:
            oracle.on_hard_state(self.node_id, before, ready.hard_state)
            self.storage.set_hard_state(ready.hard_state)
        # Led during the whole interval since the previous Ready, in this same term?
        led_before = self.role is Role.LEADER and self.storage.hard_state.term == before.term
        if ready.soft_state is not None:
            self.role = ready.soft_state.role
            if self.role is Role.LEADER:
                self.host.count("leader_elected")
                oracle.on_leader(self.node_id, self.storage.hard_state.term)
                oracle.check_leader_complete(self.node_id, self.storage)
        self._record_commit(self.storage.hard_state, led_before)

    def _record_commit(self, hard_state: HardState, led_before: bool) -> None:
        if hard_state.commit <= self.commit:
            return
        oracle = self.host.oracle
        before, self.commit = self.commit, hard_state.commit
        oracle.on_commit(self.node_id, self.storage, before, self.commit)
        if self.role is Role.LEADER and led_before:
            term = durable_term(self.storage, self.commit)
            assert term is not None, f"{self.node_id} committed {self.commit} it does not hold"
            oracle.check_leader_commit(
                self.node_id, self.commit, term, hard_state.term,
                (self.conf.voters, self.conf_before.voters),
                self.host.storages(),
            )

    def _append(self, entries: tuple[Entry, ...]) -> None:
        first = entries[0].index
        last = self.storage.last_index()
        removed = []
        for index in range(max(first, self.storage.first_index()), last + 1):
            position = index - first
            old = durable_term(self.storage, index)
            new = entries[position].term if position < len(entries) else None
            if old is not None and old != new:
                removed.append((index, old))
        snap = self.storage.snapshot_meta()
        covered = snap.index if snap is not None else 0
        self.host.oracle.on_entries_replaced(self.node_id, removed, covered)
        self.storage.append(entries)
        self.host.oracle.on_appended(self.node_id, self.storage, entries)

    def _install_snapshot(self, meta: SnapshotMeta, term: int) -> None:
        parts = self.chunks.pop(meta.id, {})
        blob = b"".join(parts[offset] for offset in sorted(parts))
        if len(blob) != meta.size_bytes:
            raise InvariantViolation(
                f"{self.node_id} installs snapshot {meta.id!r} of {meta.size_bytes} bytes "
                f"but received {len(blob)} bytes in chunks at {sorted(parts)}"
            )
        removed = [
            (i, t) for i in range(self.storage.first_index(), self.storage.last_index() + 1)
            if (t := durable_term(self.storage, i)) is not None
        ]
        self.host.oracle.on_entries_replaced(self.node_id, removed, meta.index)
        self._keep_blob(meta.id, blob)
        self.storage.apply_snapshot(meta)
        self.kv, _ = KvStore.restore(blob)
        self.conf = self.conf_before = meta.conf_state
        self.host.count("snapshot_installed")
        self.host.oracle.on_snapshot_installed(self.node_id, meta, term)
        self.host.oracle.on_fingerprint(self.node_id, meta.index, self.kv.fingerprint())

    # -- step 2: send -------------------------------------------------------------------

    def _send_all(self, ready: Ready, keep: Callable[[], bool] | None = None) -> None:
        for message in ready.messages:
            if keep is not None and not keep():
                continue
            self._check_durable_before_send(message)
            if isinstance(message, InstallSnapshot) and message.length and not message.data:
                blob = self.snapshot_blobs[message.meta.id]
                message = fill_snapshot_chunk(
                    message, blob[message.offset : message.offset + message.length]
                )
            self.host.send(message)

    def _check_durable_before_send(self, m: Message) -> None:
        """Persist-before-send: what an acknowledgement vouches for is on disk."""
        hs = self.storage.hard_state
        if isinstance(m, RequestVoteResponse) and m.granted and not m.pre_vote:
            # A later term on disk also makes the vote safe: it can never be cast again.
            if hs.term < m.term or (hs.term == m.term and hs.vote != m.to_id):
                raise InvariantViolation(
                    f"{self.node_id} grants its term-{m.term} vote to {m.to_id} while its "
                    f"durable hard state is term={hs.term} vote={hs.vote}"
                )
        elif isinstance(m, AppendEntriesResponse) and m.success:
            if m.index > self.storage.last_index():
                raise InvariantViolation(
                    f"{self.node_id} acknowledges index {m.index} to {m.to_id} but its "
                    f"durable log ends at {self.storage.last_index()}"
                )
        elif isinstance(m, InstallSnapshotResponse) and not m.done:
            if m.snapshot_id in self.snapshot_blobs:  # already assembled and installed
                have = len(self.snapshot_blobs[m.snapshot_id])
            else:
                have = sum(len(d) for d in self.chunks.get(m.snapshot_id, {}).values())
            if m.next_offset > have:
                raise InvariantViolation(
                    f"{self.node_id} acknowledges {m.next_offset} bytes of snapshot "
                    f"{m.snapshot_id!r} but has {have} durable"
                )

    # -- step 3: apply ------------------------------------------------------------------

    def _apply_all(self, ready: Ready) -> None:
        for entry in ready.committed_entries:
            if entry.index <= self.kv.applied:
                # Covered by a snapshot installed in this same Ready.
                continue
            self._apply(entry)

    def _apply(self, entry: Entry) -> None:
        oracle = self.host.oracle
        oracle.on_apply(self.node_id, entry)
        if self.host.verbose:
            self.host.log(f"{self.node_id} apply {describe_entry(entry)}")
        if entry.kind is EntryKind.NORMAL:
            cmd = decode_command(entry.data)
            self.kv.apply(entry.index, entry.term, cmd)
            oracle.on_request_applied(self.node_id, cmd.request_id, entry.index, entry.term)
        elif entry.kind is EntryKind.CONF_CHANGE:
            cc = decode_conf_change(entry.data)
            assert self.raft is not None
            self.conf_before = self.conf
            self.conf = self.raft.apply_conf_change(cc)
            self.kv.skip(entry.index)
            self.host.on_conf_applied(self, cc, entry.index)
        else:
            self.kv.skip(entry.index)

    # -- application snapshots (compaction) ---------------------------------------------

    def take_snapshot(self, keep_entries: int) -> SnapshotMeta | None:
        """Snapshot the store at its applied index and compact the log behind it."""
        assert self.raft is not None
        index = self.kv.applied
        current = self.storage.snapshot_meta()
        if index == 0 or (current is not None and index <= current.index):
            return None
        term = self.storage.term(index)
        self.snapshot_seq += 1
        blob = self.kv.serialize({})
        meta = SnapshotMeta(
            index, term, self.conf, len(blob), f"{self.node_id}.{index}.{self.snapshot_seq}"
        )
        self._keep_blob(meta.id, blob)
        self.storage.create_snapshot(meta)
        self.raft.report_snapshot(meta)
        self.storage.compact(max(self.storage.first_index() - 1, index - keep_entries))
        self.host.oracle.on_fingerprint(self.node_id, index, self.kv.fingerprint())
        return meta

    def _keep_blob(self, snapshot_id: str, blob: bytes) -> None:
        """Keep the newest few snapshots: a transfer of an older one may be under way."""
        self.snapshot_blobs[snapshot_id] = blob
        while len(self.snapshot_blobs) > _BLOBS_KEPT:
            del self.snapshot_blobs[next(iter(self.snapshot_blobs))]
