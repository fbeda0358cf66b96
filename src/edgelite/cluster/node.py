"""A node's SQL service: namespaces, streams, and Hrana programs run on storage.

This is what the server talks to (through the ``NodeService`` protocol it declares).
Everything blocking happens on storage threads; this class only routes jobs and turns
their completion callbacks into awaitables.

Every node is a Raft member (``edgelite dev`` is a one-node cluster): databases commit
through ``RaftCommitStep`` once ``attach`` gave the node its member, and catalog changes
(create, delete, fork, config) are proposed as log entries and applied on every node by
``state_machine.ClusterStateMachine``. Writes on a node that does not lead fail with
``NotLeaderError`` before they run; the edge forwards them to the leader. Reads wait for
the consistency level the caller chose (``read_barrier``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgelite.cluster import hrana_engine as engine
from edgelite.cluster.catalog import (
    DEFAULT_NAMESPACE,
    Catalog,
    check_namespace_name,
    config_to_json,
    parse_config,
)
from edgelite.cluster.commands import (
    CatalogCommand,
    WriteCommand,
    decode_command,
    encode_command,
)
from edgelite.cluster.log_index import Retention
from edgelite.cluster.raft_commit import RaftCommitStep
from edgelite.cluster.sync_service import SyncService
from edgelite.errors import (
    AlreadyAppliedError,
    BlockedError,
    ClusterUnavailableError,
    DatabaseClosedError,
    NamespaceNotFoundError,
    ProtocolError,
)
from edgelite.protocol import hrana
from edgelite.protocol.hrana import messages as m
from edgelite.protocol.hrana.legacy import LegacyRequest
from edgelite.protocol.hrana.sql_store import SqlStore
from edgelite.raft import Entry
from edgelite.storage.connection import ConnectionLimits
from edgelite.storage.content_hash import content_hash
from edgelite.storage.database import Database, DatabaseConfig
from edgelite.storage.executor import ResponseBudget
from edgelite.storage.session import JobOutcome, Program, SqlSession
from edgelite.storage.snapshot_files import applied_index_of_file, backup_file
from edgelite.storage.statements import Kind

if TYPE_CHECKING:
    from edgelite.cluster.member import Member

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestLimits:
    response_bytes_max: int = 10 * 1024 * 1024
    rows_per_response_max: int = 1_000_000

    def budget(self) -> ResponseBudget:
        return ResponseBudget(self.response_bytes_max, self.rows_per_response_max)


@dataclasses.dataclass(slots=True)
class NamespaceStats:
    rows_read: int = 0
    rows_written: int = 0
    queries: int = 0
    write_requests: int = 0


@dataclasses.dataclass(eq=False, slots=True)
class Stream:
    """One client stream on one database (opaque to the server)."""

    namespace: str
    database: Database
    session: SqlSession


@dataclasses.dataclass(frozen=True, slots=True)
class ReadLevel:
    """How fresh reads must be: ``strong`` (linearizable), ``session`` (at least the
    ``bookmark`` index) or ``eventual`` (this node, now)."""

    consistency: str = "strong"
    bookmark: int | None = None
    # ``eventual`` and ``session`` reads: serve locally only if this node's data is at
    # most this old, else confirm a read index first (``Member.staleness_s``).
    max_staleness_ms: int | None = None


STRONG = ReadLevel()


@dataclasses.dataclass(frozen=True, slots=True)
class Executed:
    value: Any
    replication_index: int


class Node:
    def __init__(self, catalog: Catalog, db_config: DatabaseConfig,
                 limits: RequestLimits) -> None:
        self.catalog = catalog
        self.db_config = db_config
        self.limits = limits
        self._databases: dict[str, Database] = {}
        self._lock = threading.Lock()
        # Files being replaced (a snapshot install: every database; a repair: one).
        # Nothing may open them meanwhile: an open connection would keep reading the
        # replaced file's old inode forever.
        self._replacing_all = False
        self._replacing: set[str] = set()
        # Databases whose replica diverged: the entries held back while they are
        # repaired (see resync.py), and who starts the repair.
        self.diverged: dict[str, list[Entry]] = {}
        self.on_diverged: Callable[[str, int], None] | None = None
        self.stats: dict[str, NamespaceStats] = {}
        self.member: Member | None = None
        self.node_id = ""
        self.accepting_writes = False
        self.commit_timeout_s = 10.0
        self.session_wait_s = 2.0
        self.sync = SyncService(self)  # offline sync and change streams (sync_service.py)

    def attach(self, member: Member, *, commit_timeout_s: float) -> None:
        """Give the node its Raft member; databases opened after this commit through it."""
        assert self.member is None and not self._databases
        self.member = member
        self.node_id = member.node_id
        self.commit_timeout_s = commit_timeout_s

    # --- databases -----------------------------------------------------------------------

    def database(self, name: str) -> Database:
        with self._lock:
            database = self._databases.get(name)
            if database is not None:
                return database
            if self._replacing_all or name in self._replacing:
                raise DatabaseClosedError(f"database {name} is being replaced by a copy "
                                          "from the leader; retry")
            if not self.catalog.exists(name):
                raise NamespaceNotFoundError(f"Namespace `{name}` doesn't exist")
            assert self.member is not None, "attach() the member before opening databases"
            commit_step = RaftCommitStep(self.member, self.node_id,
                                         timeout_s=self.commit_timeout_s)
            database = Database(name, self.catalog.path(name), self._config_for(name),
                                commit_step)
            database.writer.on_local_commit = self.member.local_commit_done
            database.set_accepting_writes(self.accepting_writes)
            self._databases[name] = database
            self.stats.setdefault(name, NamespaceStats())
            return database

    def database_if_exists(self, name: str) -> Database | None:
        if not self.catalog.exists(name):
            return None
        return self.database(name)

    async def close_database(self, name: str) -> None:
        with self._lock:
            database = self._databases.pop(name, None)
        self.stats.pop(name, None)
        if database is not None:
            await asyncio.to_thread(database.close)

    # --- divergence -------------------------------------------------------------------------

    def hold_if_diverged(self, name: str, entry: Entry) -> bool:
        held = self.diverged.get(name)
        if held is None:
            return False
        held.append(entry)
        return True

    def mark_diverged(self, name: str, entry: Entry, error: BaseException) -> None:
        """Loop thread: applying ``entry`` to ``name`` conflicted. Serve it no more; the
        entry and every later one for it wait for the repair."""
        if name in self.diverged:
            self.diverged[name].insert(0, entry)
            return
        logger.critical("node %s: database %s diverged at index %d (%s); it stops serving "
                        "until it is copied back from the leader", self.node_id, name,
                        entry.index, error)
        self.diverged[name] = [entry]
        if self.on_diverged is not None:
            self.on_diverged(name, entry.index)

    def forget_divergence(self, name: str) -> None:
        self.diverged.pop(name, None)

    async def replace_database(self, name: str, snapshot: Any) -> None:
        """Install ``name`` from a snapshot, then apply what was held back above it."""
        with self._lock:
            self._replacing.add(name)
        try:
            await self.close_database(name)
            file_name = f"ns-{name}.db"
            if file_name in {f.name for f in snapshot.files}:
                await asyncio.to_thread(_replace_file, snapshot.path(file_name),
                                        self.catalog.path(name))
        finally:
            with self._lock:
                self._replacing.discard(name)
        held = self.diverged.pop(name, [])
        database = self.database_if_exists(name)
        if database is None:
            return
        copied_at = database.applied_index
        for entry in sorted(held, key=lambda e: e.index):
            if entry.index > copied_at:
                command = decode_command(entry.data)
                assert isinstance(command, WriteCommand)
                database.submit_apply(entry.index, command.effect, command.request_ids,
                                      self._replayed(name, entry))

    def _replayed(self, name: str, entry: Entry) -> Callable[[int, BaseException | None],
                                                             None]:
        loop = asyncio.get_running_loop()

        def done(_index: int, error: BaseException | None) -> None:
            if error is not None:
                loop.call_soon_threadsafe(self.mark_diverged, name, entry, error)
        return done

    def set_accepting_writes(self, accepting: bool) -> None:
        with self._lock:
            self.accepting_writes = accepting
            databases = list(self._databases.values())
        for database in databases:
            database.set_accepting_writes(accepting)

    async def reconfigure(self, name: str) -> None:
        """A namespace's settings changed: blocks apply to streams opened from now on;
        the size limit and transaction timeout when the database reopens, now."""
        await self.close_database(name)

    def _config_for(self, name: str) -> DatabaseConfig:
        config = self.catalog.config(name)
        timeout = config.txn_timeout_s
        return dataclasses.replace(
            self.db_config, db_size_bytes_max=config.max_db_size_bytes,
            txn_timeout_s=self.db_config.txn_timeout_s if timeout is None else float(timeout))

    def close(self) -> None:
        with self._lock:
            databases, self._databases = list(self._databases.values()), {}
        for database in databases:
            database.close()
        self.catalog.close()

    # --- consistency -----------------------------------------------------------------------

    async def read_barrier(self, read: ReadLevel) -> None:
        """Wait until this node may serve a read at ``read.consistency`` (ARCHITECTURE §5).

        Writes need no barrier: they run on the leader's writer, which sees every
        committed write; so ``run`` takes it only for jobs that start on a reader.
        """
        consistency, bookmark = read.consistency, read.bookmark
        member = self.member
        assert member is not None
        if consistency == "strong":
            await member.read_index()
            return
        if consistency == "session" and bookmark:
            await member.wait_applied(bookmark, timeout_s=self.session_wait_s)
        limit_ms = read.max_staleness_ms
        if limit_ms is not None and member.staleness_s(time.monotonic()) * 1000 > limit_ms:
            member.stats.stale_reads_refreshed += 1
            await member.read_index()

    # --- streams -------------------------------------------------------------------------

    def open_stream(self, namespace: str, *, read_only: bool) -> Stream:
        if namespace in self.diverged:
            raise ClusterUnavailableError(
                f"database {namespace} is being repaired on this node (its replica "
                "diverged); retry, or ask another member")
        database = self.database(namespace)
        config = self.catalog.config(namespace)
        blocked = None
        if config.block_reads:
            raise BlockedError(f"Operation was blocked: {config.block_reason or 'reads'}")
        if config.block_writes:
            blocked = config.block_reason or "writes are blocked"
        session = database.open_session(read_only=read_only)
        session.write_blocked_reason = blocked
        return Stream(namespace, database, session)

    async def close_stream(self, stream: Stream) -> None:
        if stream.session.closed:
            return
        if stream.session.is_autocommit:  # nothing held: no storage thread involved
            stream.session.closed = True
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[JobOutcome] = loop.create_future()
        stream.database.close_session(stream.session, _settle_from_thread(loop, done))
        await done

    @staticmethod
    def read_level(consistency: str, bookmark: int | None,
                   max_staleness_ms: int | None = None) -> ReadLevel:
        return ReadLevel(consistency, bookmark, max_staleness_ms)

    def is_autocommit(self, stream: Stream) -> bool:
        return stream.session.is_autocommit

    async def run(self, stream: Stream, program: Program, texts: Sequence[str],
                  request_id: str = "", read: ReadLevel | None = None) -> Executed:
        """Run ``program`` for ``stream``; raises what the program raised."""
        prefer_reader = self._prefer_reader(stream.database, texts)
        if prefer_reader and stream.session.is_autocommit:
            await self.read_barrier(read or STRONG)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[JobOutcome] = loop.create_future()
        try:
            stream.database.submit(stream.session, program, budget=self.limits.budget(),
                                   on_done=_settle_from_thread(loop, done),
                                   prefer_reader=prefer_reader, request_id=request_id)
            outcome = await done
        except DatabaseClosedError as exc:
            raise self._closed_error(stream.namespace, exc) from exc
        stats = self.stats.setdefault(stream.namespace, NamespaceStats())
        if outcome.commit_index is not None:
            stats.write_requests += 1
        if isinstance(outcome.error, DatabaseClosedError):
            raise self._closed_error(stream.namespace, outcome.error) from outcome.error
        if outcome.error is not None:
            raise outcome.error
        index = outcome.commit_index or outcome.applied_index
        return Executed(outcome.value, index)

    def _closed_error(self, namespace: str, error: DatabaseClosedError) -> Exception:
        """A request racing the deletion of its namespace gets the answer it would have
        got a moment later; any other closing (a replacement, shutdown) is retryable."""
        if not self.catalog.exists(namespace):
            return NamespaceNotFoundError(f"Namespace `{namespace}` doesn't exist")
        return error

    @staticmethod
    def _prefer_reader(database: Database, texts: Sequence[str]) -> bool:
        """Reads go to the pool first; a known write goes straight to the writer."""
        for text in texts:
            info = database.cache.get(text) if text else None
            if info is not None and (info.needs_writer or info.kind in (
                    Kind.SAVEPOINT, Kind.COMMIT, Kind.ROLLBACK)):
                return False
        return True

    async def pipeline(self, stream: Stream, requests: Sequence[m.StreamRequest],
                       stored_sql: SqlStore, request_id: str = "",
                       read: ReadLevel | None = None) -> Executed:
        program = engine.Pipeline(requests, stored_sql)
        try:
            executed = await self.run(stream, program,
                                      engine.sql_texts(requests, stored_sql), request_id, read)
        except AlreadyAppliedError as exc:
            # A retry of a write that committed: each request answers so, nothing ran.
            error = m.StreamResultError(hrana.error_to_hrana(exc))
            closed = any(isinstance(r, m.CloseRequest) for r in requests)
            return Executed(engine.PipelineRun([error for _ in requests], stored_sql, closed),
                            exc.index)
        run: engine.PipelineRun = executed.value
        self._count(stream.namespace, run.results)
        results = [engine.with_replication_index(r, executed.replication_index)
                   for r in run.results]
        return Executed(engine.PipelineRun(results, run.stored_sql, run.closed),
                        executed.replication_index)

    async def cursor(self, stream: Stream, batch: m.Batch, stored_sql: SqlStore,
                     read: ReadLevel | None = None) -> Executed:
        texts = [step.stmt.sql or "" for step in batch.steps]
        return await self.run(stream, engine.CursorProgram(batch, stored_sql), texts,
                              read=read)

    async def legacy(self, stream: Stream, request: LegacyRequest,
                     read: ReadLevel | None = None) -> Executed:
        texts = [s if isinstance(s, str) else s.q for s in request.statements]
        return await self.run(stream, engine.LegacyProgram(request), texts, read=read)

    def _count(self, namespace: str, results: Sequence[m.StreamResult]) -> None:
        stats = self.stats.setdefault(namespace, NamespaceStats())
        for result in results:
            if not isinstance(result, m.StreamResultOk):
                continue
            response = result.response
            if isinstance(response, m.ExecuteResponse):
                _add(stats, response.result)
            elif isinstance(response, m.BatchResponse):
                for step in response.result.step_results:
                    if step is not None:
                        _add(stats, step)

    # --- admin ---------------------------------------------------------------------------

    async def _propose_catalog(self, command: CatalogCommand) -> None:
        """Replicate a catalog change; returns once this node has applied it."""
        member = self.member
        assert member is not None
        future = member.propose_from_thread(encode_command(command))
        index = await asyncio.wrap_future(future)
        await member.wait_applied(index)

    async def record_cluster_id(self) -> None:
        """Give the cluster its random id (the leader; the first applied entry wins)."""
        await self._propose_catalog(CatalogCommand(
            "identity", "", None, {"cluster_id": secrets.token_hex(8)}))

    async def create_namespace(self, name: str, body: dict[str, Any]) -> None:
        self.catalog.check_create(name)
        config = parse_config(body)
        await self._propose_catalog(CatalogCommand("create", name, None, config.to_json()))

    def namespace_config(self, name: str) -> dict[str, Any]:
        check_namespace_name(name)
        return config_to_json(self.catalog.config(name))

    def namespace_jwt_key(self, name: str) -> str | None:
        return self.catalog.config(name).jwt_key

    async def set_namespace_config(self, name: str, body: dict[str, Any]) -> None:
        self.catalog.config(check_namespace_name(name))  # 404 for unknown namespaces
        for field in ("block_reads", "block_writes"):
            if field not in body:
                raise ProtocolError(f"missing field `{field}` (required)")
        config = parse_config(body)
        await self._propose_catalog(CatalogCommand("config", name, None, config.to_json()))

    async def delete_namespace(self, name: str) -> None:
        self.catalog.check_delete(name)
        await self._propose_catalog(CatalogCommand("delete", name))

    async def set_conflict_policy(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Set a table's conflict policy: a replicated write on the leader's writer."""
        table, policy = body.get("table"), body.get("policy")
        if not isinstance(table, str) or not isinstance(policy, str):
            raise ProtocolError("fields `table` and `policy` (strings) are required")
        return await self.sync.set_conflict_policy(check_namespace_name(name), table, policy)

    async def conflict_policies(self, name: str) -> dict[str, str]:
        return await self.sync.conflict_policies(check_namespace_name(name))

    async def fork_namespace(self, source: str, target: str) -> None:
        """Copy ``source`` into a new ``target`` at one point of the log."""
        config = self.catalog.config(check_namespace_name(source))
        self.catalog.check_create(target)
        await self._propose_catalog(CatalogCommand("fork", source, target, config.to_json()))

    # --- snapshots ------------------------------------------------------------------------

    def copy_files_into(self, path_for: Callable[[str], Path]) -> None:
        """Copy the catalog and every database (one consistent copy each)."""
        store = self.catalog.store_path
        if store is not None:
            backup_file(store, path_for("catalog.db"))
        for name in self.catalog.names():
            path = self.catalog.path(name)
            if path.exists():
                backup_file(path, path_for(f"ns-{name}.db"))

    def make_files_durable(self) -> None:
        """fsync every database file and its WAL: what is applied now survives a power
        loss. Databases commit without fsync (synchronous=NORMAL) because the Raft log
        holds every committed entry; before the log is compacted behind an index, the
        entries up to it must be durable in the databases themselves."""
        paths = [self.catalog.path(name) for name in self.catalog.names()]
        for path in paths:
            for file in (path, path.with_name(path.name + "-wal")):
                try:
                    descriptor = os.open(file, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)

    def restore_lost_applies(self, snapshot: Any) -> list[str]:
        """Start-up, before any database opens: a database whose file records a lower
        applied index than its copy in ``snapshot`` lost applied transactions (a power
        loss before ``make_files_durable``, or a file restored from a backup) that the
        compacted log may no longer replay. Put the snapshot's copy in its place; the
        log replays what follows the snapshot. Returns the names restored."""
        restored = []
        for file in snapshot.files:
            name = file.name[3:-3] if file.name.startswith("ns-") else None
            if name is None or not file.name.endswith(".db") or not self.catalog.exists(name):
                continue
            ours = applied_index_of_file(self.catalog.path(name))
            theirs = applied_index_of_file(snapshot.path(file.name))
            if ours < theirs:
                logger.critical("database %s has applied index %d but snapshot %s holds "
                                "%d; restoring it from the snapshot", name, ours,
                                snapshot.meta.id, theirs)
                _replace_file(snapshot.path(file.name), self.catalog.path(name))
                restored.append(name)
        return restored

    def install_files(self, snapshot: Any) -> None:
        """Replace every database by the snapshot's copies (log thread; see snapshots)."""
        with self._lock:
            self._replacing_all = True
            databases, self._databases = list(self._databases.values()), {}
        try:
            self._install_files(snapshot, databases)
        finally:
            with self._lock:
                self._replacing_all = False

    def _install_files(self, snapshot: Any, databases: list[Database]) -> None:
        for database in databases:
            database.close()
        names = {f.name for f in snapshot.files}
        store = self.catalog.store_path
        if store is not None and "catalog.db" in names:
            self.catalog.close()
            _replace_file(snapshot.path("catalog.db"), store)
            self.catalog.reopen()
        for file_name in sorted(names):
            if file_name.startswith("ns-") and file_name.endswith(".db"):
                name = file_name[3:-3]
                if self.catalog.exists(name):
                    _replace_file(snapshot.path(file_name), self.catalog.path(name))

    def is_leader(self) -> bool:
        return self.accepting_writes

    async def request_committed_at(self, namespace: str, request_id: str) -> int | None:
        """The index a write with ``request_id`` committed at, or None if it did not.

        Asked on the leader after a linearizable barrier: every entry an earlier leader
        may have left is then either applied (and found) or gone for good.
        """
        database = self.database(namespace)
        await self.read_barrier(STRONG)
        if namespace in self.diverged:  # its copy misses entries: it cannot tell (F7)
            raise ClusterUnavailableError(
                f"database {namespace} is being repaired on this node; ask again shortly")
        return await asyncio.to_thread(database.request_applied_at, request_id)

    async def namespace_hash(self, name: str) -> dict[str, Any]:
        """Applied index and content digest of a namespace (replicas must agree)."""
        check_namespace_name(name)
        database = self.database(name)
        index, digest = await asyncio.to_thread(content_hash, database.path)
        return {"applied_index": index, "hash": digest}

    def namespaces(self) -> list[str]:
        return self.catalog.names()

    def apply_stalled_s(self) -> float:
        """How long the longest-waiting committed entry has waited to be applied here
        (a full disk; ``Writer.apply_stalled_since``); 0 when nothing waits."""
        with self._lock:
            stalled = [db.writer.apply_stalled_since for db in self._databases.values()]
        since = min((t for t in stalled if t is not None), default=None)
        return 0.0 if since is None else time.monotonic() - since

    def applied_indexes(self) -> list[tuple[str, int]]:
        with self._lock:
            return [(name, db.applied_index) for name, db in self._databases.items()]

    def namespace_stats(self, name: str) -> dict[str, Any]:
        check_namespace_name(name)
        database = self.database(name)
        stats = self.stats.setdefault(name, NamespaceStats())
        size = sum(p.stat().st_size for p in database.path.parent.glob(
            database.path.name + "*") if p.is_file())
        return {"rows_read_count": stats.rows_read, "rows_written_count": stats.rows_written,
                "query_count": stats.queries, "write_requests_delegated": 0,
                "storage_bytes_used": size, "replication_index": database.applied_index,
                "write_requests": stats.write_requests}


def build_node(values: Mapping[str, Any], *, data_dir: Path | None,
               db_file: Path | None) -> Node:
    """A node configured from resolved settings (``edgelite.settings.load``)."""
    limits = ConnectionLimits(sql_bytes_max=values["sql_bytes_max"],
                              value_bytes_max=values["value_bytes_max"],
                              parameters_per_statement_max=values["parameters_per_statement_max"],
                              cache_pages=values["cache_pages"])
    db_config = DatabaseConfig(
        limits=limits, query_timeout_ms=values["query_timeout_ms"],
        read_connections=values["read_connections"],
        group_commit_max=values["group_commit_max"],
        write_queue_max=values["write_queue_max"], read_queue_max=values["read_queue_max"],
        txn_timeout_s=values["txn_timeout_s"],
        # Every node commits through Raft: the log (fdatasync before any acknowledgement)
        # is the durability point, so SQLite's own commit need not fsync; compaction
        # calls make_files_durable first (see cluster/snapshots.py).
        synchronous_full=False)
    node = Node(Catalog(data_dir, db_file), db_config,
                RequestLimits(values["response_bytes_max"], values["rows_per_response_max"]))
    default = Retention()
    node.sync.retention = Retention(values.get("retain_entries", default.entries),
                                    values.get("retain_bytes", default.bytes),
                                    values.get("retain_age_s", default.age_s))
    return node


def _replace_file(source: Path, target: Path) -> None:
    """Copy ``source`` over the SQLite file ``target`` durably (its WAL goes with it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        stale = target.with_name(target.name + suffix)
        if stale.exists():
            stale.unlink()
    temporary = target.with_name(target.name + ".installing")
    shutil.copyfile(source, temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _add(stats: NamespaceStats, result: m.StmtResult) -> None:
    stats.queries += 1
    stats.rows_read += result.rows_read
    stats.rows_written += result.rows_written


def _settle_from_thread(loop: asyncio.AbstractEventLoop,
                        future: asyncio.Future[JobOutcome]) -> Any:
    def settle(outcome: JobOutcome) -> None:
        if not future.done():
            future.set_result(outcome)

    def on_done(outcome: JobOutcome) -> None:
        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            logger.debug("outcome after loop close dropped")

    return on_done


__all__ = ["DEFAULT_NAMESPACE", "Executed", "Node", "RequestLimits", "Stream", "build_node"]
