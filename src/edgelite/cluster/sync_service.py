"""Offline sync and change streams on a member: what ``/v1/sync/*`` and ``/v1/changes``
run (ARCHITECTURE §8; docs/design/sync.md).

A replica's position is a Raft index. Everything here serves what *this* member has
applied, so any member can serve pulls, snapshots and change streams; pushes are
writes and run on the leader's writer (a follower's writer refuses them with
``NotLeaderError`` and the edge forwards them).

* ``snapshot``: a consistent copy of the database file (backup API, one step) and the position
  it is complete through: ``max(the copy's own applied index, the member's applied
  index before the copy began)`` — every entry of the database up to it is in the copy.
* ``pull``: the database's entries after ``since`` from the Raft log, found through the
  ``EntryIndex``; ``SnapshotRequiredError`` when some are no longer retained.
* ``push``: ``storage.merge`` as one solo job on the writer, with the request id.
* ``ChangeReader``: decoded row changes after a cursor ``(index, offset)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apsw
import msgspec

from edgelite.cluster.change_reader import ChangeReader
from edgelite.cluster.commands import WriteCommand, decode_command
from edgelite.cluster.log_index import EntryIndex, Retained, Retention
from edgelite.errors import (
    BlockedError,
    ClusterUnavailableError,
    DatabaseMismatchError,
    ProtocolError,
    SnapshotRequiredError,
    StorageError,
)
from edgelite.raft.errors import CompactedError
from edgelite.storage import effects, merge
from edgelite.storage.conflict_policy import parse_policy
from edgelite.storage.executor import ResponseBudget
from edgelite.storage.session import Job, JobOutcome, SqlSession
from edgelite.storage.sync_tables import read_policies

if TYPE_CHECKING:
    from edgelite.cluster.member import Member
    from edgelite.cluster.node import Node
    from edgelite.storage.database import Database

logger = logging.getLogger(__name__)
CLUSTER_ID_WAIT_S = 5.0
SNAPSHOTS_AT_ONCE_MAX = 2
SNAPSHOT_PREFIX = ".sync-snapshot-"


@dataclasses.dataclass(frozen=True, slots=True)
class PulledEntry:
    index: int
    committed_at_ms: int
    effect: bytes
    request_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class PullResult:
    """``applied_index``: the position a replica reaches by applying ``entries`` (the
    member's applied index, or the last entry when ``more`` are waiting)."""

    database_id: str
    entries: list[PulledEntry]
    applied_index: int
    more: bool


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotFile:
    path: Path
    index: int
    sha256: str
    size_bytes: int
    database_id: str

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class PushBody(msgspec.Struct, frozen=True):
    database_id: str
    base_index: int = 0
    changes: list[bytes] = []
    hlc: list[tuple[str, str, int]] = []


class SyncService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.retention = Retention()
        self._index: EntryIndex | None = None
        self._snapshot_slots: asyncio.Semaphore | None = None
        self._stale_snapshots_removed: set[Path] = set()
        self._started_at_s = time.time()

    # --- plumbing -------------------------------------------------------------------------

    def _member(self) -> Member:
        member = self.node.member
        if member is None:
            raise ClusterUnavailableError("this node is not running yet")
        return member

    @property
    def index(self) -> EntryIndex:
        if self._index is None:
            self._index = EntryIndex(self._member().log)  # type: ignore[arg-type]
        return self._index

    async def catch_up(self) -> int:
        """Index every applied entry and follow compaction; returns the applied index
        the index is complete to."""
        member = self._member()
        applied = member.applied_index
        log: Any = member.log
        if self.index.scanned < applied or log.first_index() > self.index.base:
            await asyncio.to_thread(self.index.catch_up, applied)
        return applied

    def database(self, namespace: str) -> Database:
        if namespace in self.node.diverged:
            raise ClusterUnavailableError(
                f"database {namespace} is being repaired on this node; ask another member")
        return self.node.database(namespace)

    def _check_reads(self, namespace: str) -> None:
        config = self.node.catalog.config(namespace)
        if config.block_reads:
            raise BlockedError(f"Operation was blocked: {config.block_reason or 'reads'}")

    async def database_id(self, namespace: str) -> str:
        """``<cluster_id>/<namespace>/<incarnation>``, waiting briefly for a new
        cluster's first leader to record its id."""
        catalog = self.node.catalog
        deadline = time.monotonic() + CLUSTER_ID_WAIT_S
        while (database_id := catalog.database_id(namespace)) is None:
            if time.monotonic() > deadline:
                raise ClusterUnavailableError("the cluster has no id yet (its first leader "
                                              "records one); retry shortly")
            await asyncio.sleep(0.05)
        return database_id

    # --- info, snapshot ------------------------------------------------------------------

    async def info(self, namespace: str) -> dict[str, Any]:
        database = self.database(namespace)
        self._check_reads(namespace)
        database_id = await self.database_id(namespace)
        applied = await self.catch_up()
        policies = await asyncio.to_thread(_read_policy_texts, database.path)
        return {"database_id": database_id, "applied_index": applied,
                "retained_from_index": self.index.retained_from(namespace),
                "conflict_policies": policies, "node_id": self.node.node_id}

    async def snapshot(self, namespace: str) -> SnapshotFile:
        database = self.database(namespace)
        self._check_reads(namespace)
        database_id = await self.database_id(namespace)
        if self._snapshot_slots is None:
            self._snapshot_slots = asyncio.Semaphore(SNAPSHOTS_AT_ONCE_MAX)
        async with self._snapshot_slots:
            position = self._member().applied_index
            directory = database.path.parent
            if directory not in self._stale_snapshots_removed:
                self._stale_snapshots_removed.add(directory)
                await asyncio.to_thread(_remove_stale_snapshots, directory,
                                        self._started_at_s)
            handle, name = tempfile.mkstemp(prefix=SNAPSHOT_PREFIX, dir=directory)
            os.close(handle)
            path = Path(name)
            try:
                copied_at, digest, size = await asyncio.to_thread(_copy_and_hash,
                                                                  database.path, path)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        return SnapshotFile(path, max(copied_at, position), digest, size, database_id)

    # --- pull ------------------------------------------------------------------------------

    async def pull(self, namespace: str, since: int, *, wait_s: float, entries_max: int,
                   bytes_max: int) -> PullResult:
        """Entries of ``namespace`` after ``since``, waiting up to ``wait_s`` for one."""
        self.database(namespace)
        self._check_reads(namespace)
        database_id = await self.database_id(namespace)
        # Entries before the namespace's creation wrote a deleted database of that name.
        since = max(since, self.node.catalog.incarnation(namespace))
        member = self._member()
        deadline = time.monotonic() + wait_s
        while True:
            applied = await self.catch_up()
            self.require_available(namespace, since)
            found = [i for i in self.index.entries_after(namespace, since, entries_max + 1)
                     if i <= applied]
            if found:
                try:
                    entries, more = await asyncio.to_thread(
                        self._read_entries, found, entries_max, bytes_max)
                except CompactedError:
                    continue  # compacted meanwhile: the next check answers 410
                return PullResult(database_id, entries,
                                  entries[-1].index if more else max(applied, since), more)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return PullResult(database_id, [], max(applied, since), False)
            with contextlib.suppress(ClusterUnavailableError):  # timed out: answer below
                await member.wait_applied(max(applied, since) + 1, timeout_s=remaining)

    def require_available(self, namespace: str, since: int) -> None:
        if not self.index.available(namespace, since):
            retained = self.index.retained_from(namespace)
            raise SnapshotRequiredError(
                f"index {since} of {namespace} is no longer retained here (this member "
                f"serves positions from {retained}); bootstrap again from "
                "/v1/sync/snapshot", retained_from_index=retained)

    def _read_entries(self, indexes: Sequence[int], entries_max: int,
                      bytes_max: int) -> tuple[list[PulledEntry], bool]:
        """Blocking: the entries at ``indexes``, bounded; and whether some were left."""
        log: Any = self._member().log
        found: list[PulledEntry] = []
        total = 0
        for index in indexes:
            if len(found) >= entries_max:
                return found, True
            (entry,) = log.entries(index, index + 1, 1 << 62)
            command = decode_command(entry.data)
            assert isinstance(command, WriteCommand), (index, command)
            if found and total + len(command.effect) > bytes_max:
                return found, True
            total += len(command.effect)
            found.append(PulledEntry(index, command.committed_at_ms, command.effect,
                                     tuple(command.request_ids)))
        return found, False

    # --- push, policies ----------------------------------------------------------------------

    async def push(self, namespace: str, request_id: str, body: bytes) -> dict[str, Any]:
        """Merge a replica's changesets (on the leader; ``NotLeaderError`` elsewhere)."""
        database = self.database(namespace)
        config = self.node.catalog.config(namespace)
        if config.block_writes or config.block_reads:
            raise BlockedError(f"Operation was blocked: {config.block_reason or 'writes'}")
        database_id = await self.database_id(namespace)
        try:
            pushed = msgspec.msgpack.decode(body, type=PushBody)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"the push body is not valid msgpack of "
                                f"{{database_id, base_index, changes, hlc}}: {exc}") from exc
        if pushed.database_id != database_id:
            raise DatabaseMismatchError(
                f"this push is for database {pushed.database_id[:120]!r}, but {namespace} "
                f"is {database_id!r} (another cluster, or the namespace was created again);"
                " the replica must bootstrap again")
        now_ms = int(time.time() * 1000)
        clocks = merge.clocks_of(pushed.hlc, now_ms)
        work = merge.Push(tuple(pushed.changes), clocks, request_id, now_ms)
        await asyncio.to_thread(merge.validate, work.changesets)  # before taking the writer
        outcome = await self._run_solo(database, merge.merge_program(work), request_id)
        merged: merge.MergeOutcome = outcome.value
        index = merged.index if merged.index is not None else outcome.applied_index
        return {"index": index, "applied": merged.applied, "conflicts": merged.conflicts,
                "recorded": merged.recorded}

    async def set_conflict_policy(self, namespace: str, table: str,
                                  policy_text: str) -> dict[str, Any]:
        try:
            policy = parse_policy(policy_text)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from exc
        database = self.database(namespace)
        outcome = await self._run_solo(database, merge.set_policy_program(table, policy), "")
        return {"table": table, "policy": policy.text, "index": outcome.commit_index}

    async def conflict_policies(self, namespace: str) -> dict[str, str]:
        database = self.database(namespace)
        return await asyncio.to_thread(_read_policy_texts, database.path)

    async def _run_solo(self, database: Database, program: Callable[[Any], Any],
                        request_id: str) -> JobOutcome:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[JobOutcome] = loop.create_future()

        def resolve(outcome: JobOutcome) -> None:
            if not done.done():
                done.set_result(outcome)

        def settle(outcome: JobOutcome) -> None:
            loop.call_soon_threadsafe(resolve, outcome)

        job = Job(SqlSession(read_only=False, database_name=database.name), program,
                  ResponseBudget(1 << 20, 1000), settle, solo=True, request_id=request_id)
        database.writer.submit(job)
        outcome = await done
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def change_reader(self, namespace: str, tables: frozenset[str] | None) -> ChangeReader:
        self.database(namespace)  # 404 before a stream starts
        return ChangeReader(self, namespace, tables)

    # --- retention -----------------------------------------------------------------------------

    def compaction_floor(self, applied: int) -> int:
        """Blocking: how far the log may be compacted without breaking retention."""
        self.index.catch_up(applied)
        return self.index.compaction_floor(self.retention, applied, int(time.time() * 1000))

    def retained(self) -> Retained | None:
        if self._index is None:
            return None
        first = self.index.retained()
        log: Any = self._member().log
        return dataclasses.replace(first, first_index=log.first_index())


def _read_policy_texts(path: Path) -> dict[str, str]:
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {table: policy.text for table, policy in read_policies(connection).items()}
    finally:
        connection.close()


def _copy_and_hash(source: Path, target: Path) -> tuple[int, str, int]:
    """Blocking: copy ``source`` to ``target``; its applied index, sha256 and size.

    One backup step for the whole file, in one read transaction: a copy made of several
    steps restarts whenever another connection commits in between, so under a steady
    write load it never finishes (measured: a 40 MB database with a write every
    millisecond, 2000 restarts in 5 s). In WAL mode the read transaction does not block
    writers; it only holds checkpoints back while the copy runs.
    """
    source_connection = apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)
    target_connection = apsw.Connection(str(target))
    try:
        with target_connection.backup("main", source_connection, "main") as backup:
            backup.step(-1)
        target_connection.execute("PRAGMA journal_mode=WAL")
    except apsw.Error as exc:
        raise StorageError(f"copying {source.name} for a sync snapshot failed: {exc}") \
            from exc
    finally:
        target_connection.close()
        source_connection.close()
    connection = apsw.Connection(str(target), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        copied_at = effects.read_applied_index(connection)
    finally:
        connection.close()
    digest = hashlib.sha256()
    size = 0
    with open(target, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return copied_at, digest.hexdigest(), size


def _remove_stale_snapshots(directory: Path, started_at_s: float) -> None:
    """Temporary copies an earlier process left behind when it stopped mid-stream."""
    for stale in directory.glob(SNAPSHOT_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < started_at_s:
                stale.unlink()


__all__ = ["PullResult", "PulledEntry", "PushBody", "SnapshotFile", "SyncService"]
