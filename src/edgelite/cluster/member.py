"""One cluster member: the Raft core, its durable log, its transport, its state machine,
and the one loop that drives them.

The Ready loop (``_handle_ready``) is the only code that touches ``Raft`` after start-up.
Each turn it feeds ticks, inbound messages, proposals and read requests into the core,
then, while the core has work, handles one ``Ready`` in the order its docstring gives:

1. **persist** entries, hard state and snapshot chunks on the log thread (fsync when
   ``must_sync``) and wait for that;
2. **send** messages (leader snapshot chunks filled from the snapshot store);
3. **apply** committed entries, in order (membership changes here; commands through the
   state machine, which completes them asynchronously, in order per database);
4. **answer reads** whose read index is applied; then ``advance``.

Writers on other threads propose with ``propose_from_thread`` and wait on the returned
``concurrent.futures.Future``: it resolves with the entry's index once the entry is
committed *with the term it was proposed in* (Raft: same index and term = same entry),
with ``NotLeaderError`` if the core refused it, and with ``OutcomeUnknownError`` if
leadership changed first (the entry may still commit under the next leader).

Invariants: ``applied_index <= commit index``; every index ``<= applied_index`` has been
applied to the state machine; a proposal future resolves exactly once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from edgelite.errors import (
    ClusterUnavailableError,
    NotLeaderError,
    OutcomeUnknownError,
    StorageError,
)
from edgelite.raft import (
    ConfState,
    Entry,
    EntryKind,
    Message,
    NoLeaderError,
    ProposalDroppedError,
    Raft,
    RaftConfig,
    Ready,
    Role,
    SnapshotMeta,
    decode_conf_change,
    fill_snapshot_chunk,
)
from edgelite.raft import messages as rm
from edgelite.raft.errors import ConfChangeError

logger = logging.getLogger(__name__)


class LogStore(Protocol):
    """What the member needs of the durable log (``storage.raftlog.RaftLogStore``)."""

    def append(self, entries: Sequence[Entry]) -> None: ...
    def set_hard_state(self, state: Any) -> None: ...
    def sync(self) -> None: ...
    def apply_snapshot(self, meta: SnapshotMeta) -> None: ...
    def create_snapshot(self, meta: SnapshotMeta) -> None: ...
    def compact(self, index: int) -> None: ...
    def term(self, index: int) -> int: ...
    def first_index(self) -> int: ...


class Transport(Protocol):
    def send(self, node_id: str, message: Any) -> bool: ...


class SnapshotSource(Protocol):
    """Snapshot bytes for chunks: the leader reads, a follower writes; then (log thread)
    the follower installs the files before the log is replaced, and is told when the log
    has been."""

    def read_chunk(self, snapshot_id: str, offset: int, length: int) -> bytes: ...
    def write_chunk(self, meta: SnapshotMeta, offset: int, data: bytes) -> None: ...
    def install(self, meta: SnapshotMeta) -> None: ...
    def installed(self, meta: SnapshotMeta) -> None: ...


class StateMachine(Protocol):
    """Applies committed commands. ``apply`` may complete later, on another thread:
    it calls ``done(index, error)`` exactly once per entry, in order per database.
    Barrier entries (catalog changes) run alone, after every earlier entry applied."""

    def apply(self, entry: Entry, done: Callable[[int, BaseException | None], None]) -> None: ...
    def is_barrier(self, entry: Entry) -> bool: ...
    async def apply_barrier(self, entry: Entry) -> None: ...
    def set_leader(self, accepting_writes: bool) -> None: ...
    def on_membership(self, conf: ConfState, context: bytes) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class MemberConfig:
    tick_interval_s: float = 0.1
    commit_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    proposals_max: int = 10_000


@dataclasses.dataclass(slots=True)
class MemberStats:
    """Counters for /metrics (read from the loop thread; fsync ones written by the log
    thread: plain int/float updates, a torn read only skews one scrape)."""

    fsyncs: int = 0
    fsync_seconds: float = 0.0
    fsync_seconds_max: float = 0.0
    applies: int = 0
    apply_seconds: float = 0.0
    snapshots_received: int = 0
    snapshot_chunks_received: int = 0
    snapshot_chunks_sent: int = 0
    snapshots_taken: int = 0
    read_index_requests: int = 0
    stale_reads_refreshed: int = 0

    def observe_fsync(self, seconds: float) -> None:
        self.fsyncs += 1
        self.fsync_seconds += seconds
        self.fsync_seconds_max = max(self.fsync_seconds_max, seconds)

    def observe_apply(self, seconds: float) -> None:
        self.applies += 1
        self.apply_seconds += seconds


@dataclasses.dataclass(slots=True)
class _Proposal:
    data: bytes
    future: concurrent.futures.Future[int]
    term: int = 0
    index: int = 0


class Member:
    def __init__(self, raft_config: RaftConfig, log: LogStore, transport: Transport,
                 state_machine: StateMachine, snapshots: SnapshotSource,
                 config: MemberConfig = MemberConfig(), *, seed: int | None = None) -> None:
        self.node_id = raft_config.node_id
        self.config = config
        self.log = log
        self.transport = transport
        self.state_machine = state_machine
        self.snapshots = snapshots
        self.raft = Raft(raft_config, log, random.Random(seed))  # type: ignore[arg-type]
        self.applied_index = raft_config.applied
        self.commit_index = 0
        self.leader_id: str | None = None
        self.role = Role.FOLLOWER
        self.term = 0
        self.leader_changes = 0
        self._log_thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"edgelite-raftlog-{self.node_id}")
        self._inbox: list[Message] = []
        self._proposals: list[_Proposal] = []
        self._in_flight: dict[int, _Proposal] = {}
        self._read_batch: list[asyncio.Future[int]] = []
        self._reads: dict[bytes, list[asyncio.Future[int]]] = {}
        self._reads_without_leader: list[asyncio.Future[int]] = []
        self._applied_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._done: dict[int, BaseException | None] = {}
        self._awaiting_local: dict[int, Entry] = {}
        self._dispatched_at: dict[int, float] = {}
        self.stats = MemberStats()
        # Monotonic time of the newest confirmed read point this node has applied: every
        # write acknowledged before it is visible here (see ``staleness_s``).
        self.fresh_as_of: float | None = None
        status = self.raft.status()
        self._conf_history: list[tuple[int, ConfState]] = [
            (raft_config.applied, status.conf_state)]
        self._write_gate_index: int | None = None
        self._read_ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._dispatch_queue: asyncio.Queue[tuple[Entry, _Proposal | None]] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.fatal: BaseException | None = None

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=f"raft-{self.node_id}")
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"apply-{self.node_id}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait_stopped(self) -> BaseException | None:
        """Wait until the Raft loop ends; the error that stopped it (``fatal``), if any."""
        assert self._task is not None, "start() the member first"
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(self._task)
        return self.fatal

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._dispatcher
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._fail_proposals(OutcomeUnknownError, "the node is stopping")
        self._log_thread.shutdown(wait=True)

    # --- inputs (loop thread unless noted) ---------------------------------------------

    def on_message(self, _from_id: str, message: Message) -> None:
        self._inbox.append(message)
        self._wake.set()

    def propose_from_thread(self, data: bytes) -> concurrent.futures.Future[int]:
        """Any thread: propose ``data``; see the module docstring for the outcomes."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        loop = self._loop
        if loop is None or self.fatal is not None:
            future.set_exception(ClusterUnavailableError("this node is not running"))
            return future
        loop.call_soon_threadsafe(self._enqueue_proposal, _Proposal(data, future))
        return future

    def _enqueue_proposal(self, proposal: _Proposal) -> None:
        if len(self._proposals) + len(self._in_flight) >= self.config.proposals_max:
            proposal.future.set_exception(ClusterUnavailableError(
                "too many proposals waiting to commit (proposals_max)"))
            return
        self._proposals.append(proposal)
        self._wake.set()

    async def read_index(self) -> int:
        """A linearizable read point (ReadIndex), once this node has applied it."""
        assert self._loop is not None
        asked_at = time.monotonic()
        index = self.raft.sole_voter_read_index()
        if index is not None and self.applied_index >= index:
            self._confirmed_fresh(asked_at)
            return index  # a one-voter cluster (edgelite dev) needs no round trip
        self.stats.read_index_requests += 1
        future: asyncio.Future[int] = self._loop.create_future()
        self._read_batch.append(future)
        self._wake.set()
        try:
            async with asyncio.timeout(self.config.read_timeout_s):
                index = await future
                await self.wait_applied(index)
        except TimeoutError:
            raise ClusterUnavailableError(
                "no quorum confirmed the read within read_timeout_s") from None
        self._confirmed_fresh(asked_at)
        return index

    def _confirmed_fresh(self, asked_at: float) -> None:
        # A read index covers every write acknowledged before it was asked for.
        if self.fresh_as_of is None or asked_at > self.fresh_as_of:
            self.fresh_as_of = asked_at

    def staleness_s(self, now: float) -> float:
        """An upper bound on how old this node's data is at monotonic time ``now``: every
        write acknowledged more than this long ago is applied here. Infinite until a
        read index was confirmed and applied here."""
        if self.fresh_as_of is None:
            return float("inf")
        return max(0.0, now - self.fresh_as_of)

    async def wait_applied(self, index: int, timeout_s: float | None = None) -> None:
        if self.applied_index >= index:
            return
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._applied_waiters.append((index, future))
        if timeout_s is None:
            await future
            return
        try:
            async with asyncio.timeout(timeout_s):
                await future
        except TimeoutError:
            raise ClusterUnavailableError(
                f"this node has not applied index {index} yet (applied "
                f"{self.applied_index})") from None

    def campaign(self) -> None:
        self.raft.campaign()
        self._wake.set()

    def propose_conf_change(self, change: Any) -> asyncio.Future[int]:
        """Propose a membership change; resolves when it is committed and applied."""
        assert self._loop is not None
        ticket = self.raft.propose_conf_change(change)
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._in_flight[ticket.index] = _Proposal(b"", future, ticket.term, ticket.index)
        self._wake.set()
        return asyncio.wrap_future(future)

    def transfer_leadership(self, to: str) -> None:
        self.raft.transfer_leadership(to)
        self._wake.set()

    def report_snapshot(self, meta: SnapshotMeta) -> None:
        self.raft.report_snapshot(meta)
        self._conf_history = [(i, c) for i, c in self._conf_history if i >= meta.index] or \
            [(meta.index, meta.conf_state)]

    def conf_at(self, index: int) -> ConfState:
        """The configuration in force at ``index`` (for a snapshot's metadata)."""
        conf = self._conf_history[0][1]
        for at, changed in self._conf_history:
            if at > index:
                break
            conf = changed
        return conf

    async def run_on_log_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a log-store write on the log thread, in order with the Ready loop's."""
        assert self._loop is not None
        return await self._loop.run_in_executor(self._log_thread, function, *args)

    # --- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        next_tick = time.monotonic() + self.config.tick_interval_s
        try:
            while True:
                timeout = max(0.0, next_tick - time.monotonic())
                try:
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
                now = time.monotonic()
                while now >= next_tick:
                    self.raft.tick()
                    next_tick += self.config.tick_interval_s
                self._feed()
                while self.raft.has_ready():
                    await self._handle_ready(self.raft.ready())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the node cannot continue safely
            self.fatal = exc
            logger.critical("node %s: Raft loop stopped: %s", self.node_id, exc, exc_info=exc)
            self._fail_proposals(OutcomeUnknownError, f"the node stopped: {exc}")
            raise

    def _feed(self) -> None:
        inbox, self._inbox = self._inbox, []
        for message in inbox:
            try:
                self.raft.step(message)
            except (ValueError, AssertionError):
                raise
            except Exception as exc:  # a peer sent nonsense; drop it, keep going
                logger.warning("node %s dropped a message: %s", self.node_id, exc)
        self._feed_proposals()
        self._feed_reads()

    def _feed_proposals(self) -> None:
        proposals, self._proposals = self._proposals, []
        if not proposals:
            return
        try:
            tickets = self.raft.propose_batch([p.data for p in proposals])
        except (NotLeaderError, NoLeaderError, ProposalDroppedError, ConfChangeError) as exc:
            leader = self.leader_id
            for proposal in proposals:
                proposal.future.set_exception(NotLeaderError(
                    f"this node is not the leader ({exc})", leader_id=leader))
            return
        for proposal, ticket in zip(proposals, tickets, strict=True):
            proposal.term, proposal.index = ticket.term, ticket.index
            self._in_flight[ticket.index] = proposal

    def _feed_reads(self) -> None:
        batch, self._read_batch = self._read_batch, []
        if not batch:
            return
        context = f"{self.node_id}:{next(self._read_ids)}".encode()
        try:
            self.raft.read_index(context)
        except (NotLeaderError, NoLeaderError):
            # No leader yet (an election is on): ask again when one is known. Each read
            # gives up by itself after read_timeout_s.
            self._reads_without_leader.extend(f for f in batch if not f.done())
            return
        self._reads[context] = batch

    async def _handle_ready(self, ready: Ready) -> None:
        # 1. Persist, durably when the core needs it, before anything leaves this node.
        assert self._loop is not None
        if ready.entries or ready.hard_state or ready.snapshot or ready.snapshot_chunks:
            await self._loop.run_in_executor(self._log_thread, self._persist, ready)
        if ready.snapshot is not None:
            self._conf_history = [(ready.snapshot.index, ready.snapshot.conf_state)]
            self._mark_applied_through(ready.snapshot.index)
        # 2. Send.
        for message in ready.messages:
            self._send(message)
        # 3. Apply committed entries, in order.
        for entry in ready.committed_entries:
            self._apply(entry)
        # 4. Reads, and role changes.
        for read_state in ready.read_states:
            for future in self._reads.pop(read_state.context, []):
                if not future.done():
                    future.set_result(read_state.index)
        if ready.soft_state is not None:
            self._on_soft_state(ready.soft_state.leader_id, ready.soft_state.role)
        if ready.hard_state is not None:
            self.commit_index = ready.hard_state.commit
            self.term = ready.hard_state.term
        self.raft.advance(ready)

    def _persist(self, ready: Ready) -> None:
        """Log thread: chunks, snapshot, entries, hard state; fsync if must_sync."""
        for chunk in ready.snapshot_chunks:
            self.snapshots.write_chunk(chunk.meta, chunk.offset, chunk.data)
            self.stats.snapshot_chunks_received += 1
        if ready.snapshot is not None:
            self.snapshots.install(ready.snapshot)
            self.log.apply_snapshot(ready.snapshot)
            self.snapshots.installed(ready.snapshot)
            self.stats.snapshots_received += 1
        if ready.entries:
            self.log.append(ready.entries)
        if ready.hard_state is not None:
            self.log.set_hard_state(ready.hard_state)
        if ready.must_sync:
            started = time.perf_counter()
            self.log.sync()
            self.stats.observe_fsync(time.perf_counter() - started)

    def _send(self, message: Message) -> None:
        if isinstance(message, rm.InstallSnapshot) and not message.data and message.length:
            try:
                data = self.snapshots.read_chunk(message.meta.id, message.offset,
                                                 message.length)
            except StorageError as exc:
                logger.warning("node %s cannot read snapshot %s: %s", self.node_id,
                               message.meta.id, exc)
                self.raft.report_snapshot_status(message.to_id, False)
                return
            message = fill_snapshot_chunk(message, data)
            self.stats.snapshot_chunks_sent += 1
        if not self.transport.send(message.to_id, message):
            self.raft.report_unreachable(message.to_id)

    def _apply(self, entry: Entry) -> None:
        proposal = self._in_flight.pop(entry.index, None)
        if proposal is not None and proposal.term != entry.term:
            proposal.future.set_exception(NotLeaderError(
                f"proposal at index {entry.index} was replaced by another leader's entry; "
                "it did not commit", leader_id=self.leader_id))
            proposal = None
        if entry.kind is EntryKind.CONF_CHANGE:
            change = decode_conf_change(entry.data)
            conf = self.raft.apply_conf_change(change)
            self._conf_history.append((entry.index, conf))
            self.state_machine.on_membership(conf, change.context)
            self._complete(entry.index, None)
            if proposal is not None:
                _resolve(proposal.future, entry.index)
            return
        if entry.kind is EntryKind.NOOP or not entry.data:
            self._complete(entry.index, None)
            return
        self._dispatch_queue.put_nowait((entry, proposal))

    async def _dispatch(self) -> None:
        """Commands in log order: a catalog change waits until everything before it is
        applied (a fork must copy exactly the state at its index); writes go to their
        database's writer, which applies them in order."""
        while True:
            entry, proposal = await self._dispatch_queue.get()
            try:
                if self.state_machine.is_barrier(entry):
                    await self.wait_applied(entry.index - 1)
                    await self.state_machine.apply_barrier(entry)
                    self._complete(entry.index, None)
                    if proposal is not None:
                        _resolve(proposal.future, entry.index)
                    continue
                self._dispatch_write(entry, proposal)
            except Exception as exc:
                logger.exception("node %s: applying index %d failed", self.node_id,
                                 entry.index)
                self._complete(entry.index, exc)

    def _dispatch_write(self, entry: Entry, proposal: _Proposal | None) -> None:
        # Our own writer waiting for this entry commits it locally itself, then reports
        # through ``local_commit_done``. If it gave up waiting (cancelled the future),
        # the entry is applied like anyone else's.
        if proposal is not None and _resolve(proposal.future, entry.index):
            self._awaiting_local[entry.index] = entry
            return
        self._dispatched_at[entry.index] = time.perf_counter()
        self.state_machine.apply(entry, self._done_from_any_thread)

    def local_commit_done(self, index: int, error: BaseException | None) -> None:
        """Any thread: a writer finished committing its own entry ``index`` locally;
        if that failed, the entry is applied from the log instead."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._local_commit_done, index, error)

    def _local_commit_done(self, index: int, error: BaseException | None) -> None:
        entry = self._awaiting_local.pop(index, None)
        if error is None or entry is None:
            self._complete(index, None)
            return
        logger.warning("node %s: local commit of %d failed (%s); applying it from the log",
                       self.node_id, index, error)
        self.state_machine.apply(entry, self._done_from_any_thread)

    def _done_from_any_thread(self, index: int, error: BaseException | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._complete, index, error)

    def _complete(self, index: int, error: BaseException | None) -> None:
        started = self._dispatched_at.pop(index, None)
        if started is not None:
            self.stats.observe_apply(time.perf_counter() - started)
        if error is not None:
            logger.error("node %s: applying index %d failed: %s", self.node_id, index, error)
        self._done[index] = error
        advanced = False
        while self.applied_index + 1 in self._done:
            self._done.pop(self.applied_index + 1)
            self.applied_index += 1
            advanced = True
        if advanced:
            self._after_applied()

    def _mark_applied_through(self, index: int) -> None:
        if index > self.applied_index:
            self.applied_index = index
            for pending in [i for i in self._done if i <= index]:
                del self._done[pending]
            self._after_applied()

    def _after_applied(self) -> None:
        waiters, self._applied_waiters = self._applied_waiters, []
        for index, future in waiters:
            if index <= self.applied_index:
                if not future.done():
                    future.set_result(None)
            else:
                self._applied_waiters.append((index, future))
        gate = self._write_gate_index
        if gate is not None and self.applied_index >= gate and self.role is Role.LEADER:
            self._write_gate_index = None
            self.state_machine.set_leader(True)
            logger.info("node %s leads term %d and accepts writes (applied %d)",
                        self.node_id, self.term, self.applied_index)

    def _on_soft_state(self, leader_id: str | None, role: Role) -> None:
        if leader_id != self.leader_id:
            self.leader_changes += 1
            # Read requests sent to the previous leader will never be answered: ask again.
            for futures in self._reads.values():
                self._read_batch.extend(f for f in futures if not f.done())
            self._reads.clear()
            self._read_batch.extend(f for f in self._reads_without_leader if not f.done())
            self._reads_without_leader = []
            if self._read_batch:
                self._wake.set()
        was_leader = self.role is Role.LEADER
        self.leader_id, self.role = leader_id, role
        if role is Role.LEADER and not was_leader:
            # Serve writes only once everything before our term is applied (F3).
            self._write_gate_index = self.raft.status().last_index
            self._after_applied()
        elif was_leader and role is not Role.LEADER:
            self._write_gate_index = None
            self.state_machine.set_leader(False)
            self._fail_proposals(OutcomeUnknownError,
                                 f"leadership moved to {leader_id} before the write committed")

    def _fail_proposals(self, error: type[Exception], reason: str) -> None:
        pending = list(self._in_flight.values()) + self._proposals
        self._in_flight, self._proposals = {}, []
        for proposal in pending:
            if proposal.future.done():
                continue
            if error is OutcomeUnknownError:
                proposal.future.set_exception(OutcomeUnknownError(
                    f"outcome unknown: {reason} (index {proposal.index})", request_id=""))
            else:
                proposal.future.set_exception(error(reason))

    # --- status ------------------------------------------------------------------------------

    def status(self) -> Any:
        return self.raft.status()


def _resolve(future: concurrent.futures.Future[int], index: int) -> bool:
    """Resolve a proposal's future; False if its writer already gave up on it."""
    try:
        future.set_result(index)
    except concurrent.futures.InvalidStateError:
        return False
    return True
