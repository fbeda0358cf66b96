"""An in-memory cluster of Raft nodes for tests and benchmarks (hashicorp-style harness).

Each :class:`Node` is a :class:`Raft` over a :class:`MemoryStorage` plus a trivial state
machine (the list of applied NORMAL payloads). :meth:`Node.handle_ready` implements the
``Ready`` contract exactly, so this module doubles as its reference runtime. The network
is a FIFO of messages with partitions; nothing moves unless the test says so
(``deliver``, ``stabilize``, ``tick``), so every run is deterministic.

"Persisted" means "in the node's MemoryStorage (or snapshot store)"; :meth:`Cluster.restart`
throws away everything else, like a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from edgelite.raft.config import RaftConfig
from edgelite.raft.core import Raft, RandomSource
from edgelite.raft.messages import InstallSnapshot, Message, fill_snapshot_chunk
from edgelite.raft.ready import Ready
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import (
    ConfState,
    EntryKind,
    NodeId,
    ReadState,
    Role,
    SnapshotMeta,
    decode_conf_change,
)

__all__ = ["Cluster", "Node", "decode_state", "encode_state"]

RngFactory = Callable[[NodeId], RandomSource]


def encode_state(applied: list[tuple[int, bytes]]) -> bytes:
    """Snapshot bytes of the toy state machine (deterministic)."""
    return json.dumps([[index, data.hex()] for index, data in applied]).encode()


def decode_state(data: bytes) -> list[tuple[int, bytes]]:
    return [(int(index), bytes.fromhex(text)) for index, text in json.loads(data)]


@dataclass
class Node:
    """One member: Raft core, its storage, and a state machine that records payloads."""

    raft: Raft
    storage: MemoryStorage
    config: RaftConfig
    applied: list[tuple[int, bytes]] = field(default_factory=list)
    applied_index: int = 0
    snapshots: dict[str, bytes] = field(default_factory=dict)  # durable snapshot store
    staging: dict[str, bytearray] = field(default_factory=dict)  # chunks being received
    read_states: list[ReadState] = field(default_factory=list)

    @property
    def id(self) -> NodeId:
        return self.raft.id

    def handle_ready(self, ready: Ready, send: Callable[[Message], None]) -> None:
        """The Ready contract, step by step (see ``Ready``'s docstring)."""
        # 1. Persist: snapshot chunks, snapshot, entries, hard state.
        for chunk in ready.snapshot_chunks:
            buffer = self.staging.setdefault(chunk.meta.id, bytearray())
            if chunk.offset == 0:
                buffer.clear()
            assert len(buffer) == chunk.offset, f"chunk at {chunk.offset}, have {len(buffer)}"
            buffer.extend(chunk.data)
        if ready.snapshot is not None:
            self._install(ready.snapshot)
        self.storage.append(ready.entries)
        if ready.hard_state is not None:
            self.storage.set_hard_state(ready.hard_state)
        # 2. Send, filling leader-side snapshot chunks with bytes.
        for message in ready.messages:
            if isinstance(message, InstallSnapshot):
                data = self.snapshots[message.meta.id]
                message = fill_snapshot_chunk(
                    message, data[message.offset : message.offset + message.length]
                )
            send(message)
        # 3. Apply committed entries in order.
        for entry in ready.committed_entries:
            assert entry.index == self.applied_index + 1, (
                f"{self.id} applies {entry.index} after {self.applied_index}"
            )
            if entry.kind is EntryKind.NORMAL:
                self.applied.append((entry.index, entry.data))
            elif entry.kind is EntryKind.CONF_CHANGE:
                self.raft.apply_conf_change(decode_conf_change(entry.data))
            self.applied_index = entry.index
        # 4. Reads become answerable once applied_index >= read_state.index.
        self.read_states.extend(ready.read_states)
        self.raft.advance(ready)

    def _install(self, meta: SnapshotMeta) -> None:
        data = bytes(self.staging.pop(meta.id))
        assert len(data) == meta.size_bytes, f"snapshot {meta.id}: {len(data)} bytes"
        self.applied = decode_state(data)
        self.applied_index = meta.index
        self.snapshots[meta.id] = data
        self.storage.apply_snapshot(meta)

    def take_snapshot(self, compact: bool = True) -> SnapshotMeta:
        """Snapshot the state machine at its applied index, report it, compact the log."""
        index = self.applied_index
        data = encode_state(self.applied)
        meta = SnapshotMeta(
            index=index,
            term=self.storage.term(index),
            conf_state=self.raft.conf,
            size_bytes=len(data),
            id=f"{self.id}@{index}",
        )
        self.snapshots[meta.id] = data
        self.storage.create_snapshot(meta)
        self.raft.report_snapshot(meta)
        if compact:
            self.storage.compact(index)
        return meta


class Cluster:
    """Nodes plus a FIFO network with partitions. Node ids are strings."""

    def __init__(self, rng_factory: RngFactory, **config: Any) -> None:
        self.rng_factory = rng_factory
        self.config_overrides = config
        self.nodes: dict[NodeId, Node] = {}
        self.in_flight: list[Message] = []
        self.blocked: set[tuple[NodeId, NodeId]] = set()
        self.dropped: list[Message] = []

    @classmethod
    def founded(
        cls,
        voters: Iterable[NodeId],
        rng_factory: RngFactory,
        learners: Iterable[NodeId] = (),
        **config: Any,
    ) -> Cluster:
        """A new cluster whose founders share one bootstrap configuration; every node has
        applied the bootstrap entries (so each can campaign)."""
        cluster = cls(rng_factory, **config)
        conf = ConfState(frozenset(voters), frozenset(learners))
        for node in sorted(conf.members):
            cluster.add_node(node, MemoryStorage.bootstrapped(conf))
        for node in sorted(conf.members):
            cluster.process_ready(node)
        return cluster

    def add_node(self, node_id: NodeId, storage: MemoryStorage | None = None) -> Node:
        """Start a node; without storage it is empty (joins through the leader)."""
        assert node_id not in self.nodes
        storage = storage if storage is not None else MemoryStorage()
        config = RaftConfig(node_id, **self.config_overrides)
        node = Node(Raft(config, storage, self.rng_factory(node_id)), storage, config)
        self.nodes[node_id] = node
        return node

    def restart(self, node_id: NodeId) -> Node:
        """Crash ``node_id`` (losing all that is not persisted) and start it again."""
        old = self.nodes.pop(node_id)
        self.in_flight = [m for m in self.in_flight if m.to_id != node_id]
        snapshot = old.storage.snapshot_meta()
        applied_index = snapshot.index if snapshot is not None else 0
        config = RaftConfig(node_id, applied=applied_index, **self.config_overrides)
        node = Node(Raft(config, old.storage, self.rng_factory(node_id)), old.storage, config)
        node.snapshots = dict(old.snapshots)
        if snapshot is not None:
            node.applied = decode_state(old.snapshots[snapshot.id])
            node.applied_index = snapshot.index
        self.nodes[node_id] = node
        return node

    def remove_node(self, node_id: NodeId) -> None:
        del self.nodes[node_id]

    # -- driving ------------------------------------------------------------------------

    def process_ready(self, node_id: NodeId) -> Ready | None:
        node = self.nodes[node_id]
        if not node.raft.has_ready():
            return None
        ready = node.raft.ready()
        node.handle_ready(ready, self.in_flight.append)
        return ready

    def deliver(self, to: NodeId | None = None) -> list[Message]:
        """Deliver every in-flight message (to ``to`` only, if given), in FIFO order.
        Messages across a partition or to unknown nodes are dropped."""
        batch = [m for m in self.in_flight if to is None or m.to_id == to]
        self.in_flight = [m for m in self.in_flight if not (to is None or m.to_id == to)]
        delivered: list[Message] = []
        for message in batch:
            if (message.from_id, message.to_id) in self.blocked or message.to_id not in self.nodes:
                self.dropped.append(message)
                continue
            self.nodes[message.to_id].raft.step(message)
            delivered.append(message)
        return delivered

    def deliver_one_by_one(self, to: NodeId) -> Iterator[Message]:
        """Like ``deliver(to)``, yielding each message just before it is stepped (so a
        transcript shows the message before what handling it logs)."""
        batch = [m for m in self.in_flight if m.to_id == to]
        self.in_flight = [m for m in self.in_flight if m.to_id != to]
        for message in batch:
            if (message.from_id, message.to_id) in self.blocked or to not in self.nodes:
                self.dropped.append(message)
                continue
            yield message
            self.nodes[to].raft.step(message)

    def stabilize(self, max_rounds: int = 1000) -> None:
        """Process Readies and deliver messages until nothing is left to do."""
        for _ in range(max_rounds):
            busy = False
            for node_id in sorted(self.nodes):
                while self.process_ready(node_id) is not None:
                    busy = True
            if self.in_flight:
                busy = True
                self.deliver()
            if not busy:
                return
        raise AssertionError(f"cluster did not stabilize in {max_rounds} rounds")

    def tick(self, node_id: NodeId, ticks: int = 1) -> None:
        for _ in range(ticks):
            self.nodes[node_id].raft.tick()

    def tick_all(self, ticks: int = 1) -> None:
        for _ in range(ticks):
            for node_id in sorted(self.nodes):
                self.nodes[node_id].raft.tick()

    def elect(self, node_id: NodeId) -> None:
        """Make ``node_id`` leader with a direct campaign and settle the cluster."""
        self.nodes[node_id].raft.campaign()
        self.stabilize()
        assert self.nodes[node_id].raft.role is Role.LEADER, f"{node_id} did not win"

    # -- faults -------------------------------------------------------------------------

    def partition(self, *groups: Iterable[NodeId]) -> None:
        """Cut every link between different groups (nodes in no group are cut off)."""
        sets = [set(group) for group in groups]
        self.blocked = set()
        for a in self.nodes:
            for b in self.nodes:
                if a != b and not any(a in s and b in s for s in sets):
                    self.blocked.add((a, b))

    def isolate(self, node_id: NodeId) -> None:
        for other in self.nodes:
            if other != node_id:
                self.blocked |= {(node_id, other), (other, node_id)}

    def heal(self) -> None:
        self.blocked = set()

    # -- inspection ---------------------------------------------------------------------

    def leader(self) -> NodeId | None:
        """The leader with the highest term, if any node leads."""
        leaders = [n for n in self.nodes.values() if n.raft.role is Role.LEADER]
        if not leaders:
            return None
        return max(leaders, key=lambda n: n.raft.term).id
