"""Raft snapshots of a node: the database files at an applied index (ARCHITECTURE §4).

Taking one (every ``entries_per_snapshot`` applied entries): ``S`` = the applied index;
the catalog and every database are copied with SQLite's backup API while applying goes
on. Each copy is therefore *at least* at ``S`` and records its own applied index, so
replaying the log after ``S`` on a restored node is exactly-once per database and per
catalog change. Then the log is compacted behind ``S`` (keeping ``trailing_entries``,
so a briefly lagging follower still catches up from the log, and never an entry inside
the sync retention window — ``retain_entries``/``_bytes``/``_age_s`` — that embedded
replicas and change consumers resume from).

Installing the leader's (a follower far behind): chunks are stored durably as they come
(``SnapshotStore`` receive, resumable), then — on the log thread, before the log is
replaced — the files are moved into place. A marker file makes the move redo-able after
a crash: a node never starts on half-installed files.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from edgelite.raft import SnapshotMeta
from edgelite.storage.raftlog import RaftLogStore
from edgelite.storage.raftlog.snapshots import SnapshotStore

if TYPE_CHECKING:
    from edgelite.cluster.member import Member
    from edgelite.cluster.node import Node

logger = logging.getLogger(__name__)
MARKER = "INSTALLING"


class SnapshotManager:
    def __init__(self, node: Node, store: SnapshotStore, log: RaftLogStore, data_dir: Path,
                 *, entries_per_snapshot: int, trailing_entries: int) -> None:
        self.node = node
        self.store = store
        self.log = log
        self.data_dir = data_dir
        self.entries_per_snapshot = entries_per_snapshot
        self.trailing_entries = trailing_entries
        self._receiving: set[str] = set()
        self._taking = False

    # --- the member's snapshot source (leader reads, follower writes) ------------------------

    def read_chunk(self, snapshot_id: str, offset: int, length: int) -> bytes:
        return self.store.read_chunk(snapshot_id, offset, length)

    def write_chunk(self, meta: SnapshotMeta, offset: int, data: bytes) -> None:
        """Log thread: store a received chunk durably."""
        if meta.id not in self._receiving:
            self.store.begin_receive(meta)
            self._receiving.add(meta.id)
        self.store.write_chunk(meta.id, offset, data)

    def install(self, meta: SnapshotMeta) -> None:
        """Log thread, before the log is replaced: put the snapshot's files in place."""
        if meta.id in self._receiving:
            self.store.finish_receive(meta.id)
            self._receiving.discard(meta.id)
        self._write_marker(meta.id)
        self.node.install_files(self.store.open(meta.id))
        logger.info("node %s installed snapshot %s at index %d", self.node.node_id, meta.id,
                    meta.index)

    def installed(self, meta: SnapshotMeta) -> None:
        """Log thread: the log now starts at the snapshot; the move is final."""
        marker = self.data_dir / MARKER
        if marker.exists():
            marker.unlink()
            _fsync_directory(self.data_dir)

    def recover(self) -> None:
        """At start-up: finish an install a crash interrupted; then restore any database
        that lost applied entries the log no longer holds."""
        self._finish_interrupted_install()
        newest = self.store.latest()
        if newest is not None:
            self.node.restore_lost_applies(self.store.open(newest.id))

    def _finish_interrupted_install(self) -> None:
        marker = self.data_dir / MARKER
        if not marker.exists():
            return
        snapshot_id = marker.read_text().strip()
        snapshot = self.store.open(snapshot_id)
        logger.warning("node %s: finishing the interrupted install of snapshot %s",
                       self.node.node_id, snapshot_id)
        self.node.install_files(snapshot)
        current = self.log.snapshot_meta()
        if current is None or current.index < snapshot.meta.index:
            self.log.apply_snapshot(snapshot.meta)
        self.installed(snapshot.meta)

    def _write_marker(self, snapshot_id: str) -> None:
        marker = self.data_dir / MARKER
        temporary = marker.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            handle.write(snapshot_id)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, marker)
        _fsync_directory(self.data_dir)

    # --- taking snapshots ----------------------------------------------------------------------

    async def maybe_take(self, member: Member) -> SnapshotMeta | None:
        newest = self.store.latest()
        last = newest.index if newest is not None else 0
        if self._taking or member.applied_index - last < self.entries_per_snapshot:
            return None
        return await self.take(member)

    async def take(self, member: Member) -> SnapshotMeta | None:
        """Snapshot at the applied index, report it to the core, compact the log."""
        self._taking = True
        try:
            index = member.applied_index
            newest = self.store.latest()
            if index == 0 or (newest is not None and newest.index >= index):
                return None
            meta = SnapshotMeta(index=index, term=self.log.term(index),
                                conf_state=member.conf_at(index), size_bytes=0,
                                id=f"{self.node.node_id}-{index}")
            writer = self.store.create(meta)
            with writer:
                await asyncio.to_thread(self.node.copy_files_into, writer.path)
                meta = await asyncio.to_thread(writer.finalize)
            # Databases commit with synchronous=NORMAL (the Raft log is the durability
            # point): make what they applied durable before the log may forget it.
            await asyncio.to_thread(self.node.make_files_durable)
            await member.run_on_log_thread(self.log.create_snapshot, meta)
            member.report_snapshot(meta)
            floor = await asyncio.to_thread(self.node.sync.compaction_floor, index)
            await member.run_on_log_thread(self.log.compact,
                                           max(0, min(index - self.trailing_entries, floor)))
            await asyncio.to_thread(self.store.prune)
            member.stats.snapshots_taken += 1
            logger.info("node %s took snapshot %s (%d bytes)", self.node.node_id, meta.id,
                        meta.size_bytes)
            return meta
        finally:
            self._taking = False


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
