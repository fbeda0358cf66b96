"""Durable Raft storage: the log store (segment files) and the snapshot store.

Storage layer: blocking code, no asyncio. The one import from ``edgelite.raft`` allowed
here is its pure value modules (types, errors, storage), recorded in ARCHITECTURE's
layer table. Design: docs/design/raftlog.md.
"""

from __future__ import annotations

from edgelite.storage.raftlog.manifest import SnapshotFile
from edgelite.storage.raftlog.snapshots import Snapshot, SnapshotStore, SnapshotWriter
from edgelite.storage.raftlog.store import RaftLogStore

__all__ = ["RaftLogStore", "Snapshot", "SnapshotFile", "SnapshotStore", "SnapshotWriter"]
