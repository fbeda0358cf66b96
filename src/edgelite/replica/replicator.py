"""One replica file's sync engine: bootstrap, pull, push, wait, background loop.

A ``Replicator`` is shared by the application's connection (``sync()``,
read-your-writes waits) and, with ``sync_interval``, a background thread. It owns the
*apply* connection: the only connection that moves the file forward, in short
transactions (``rebase.apply_pulled``), so the application's reads are never blocked
by a sync (WAL). One sync step runs at a time (``_lock``); long polls wait outside it.

``sync()`` = push the outbox (offline replicas), then pull until the serving member has
nothing newer. Pushing: the batch is recorded as the push in flight *before* it is
sent; a retry (next sync, after a lost answer, a killed process or a new leader) sends
the same rows under the same request id, and the server merges them once
(``ALREADY_APPLIED`` names the first attempt's index).

Invariants: ``applied_index`` equals the file's applied index after every step (only
this object writes the file's position); the database id of every answer equals the
file's (else ``DatabaseMismatchError``, and the file is left alone).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import apsw

from edgelite.errors import DivergenceError
from edgelite.replica import bootstrap, files, outbox, rebase
from edgelite.replica.errors import (
    DatabaseMismatchError,
    NotAReplicaError,
    SnapshotRequiredError,
    SyncUnavailableError,
)
from edgelite.replica.policies import PolicyResolver
from edgelite.replica.remote import PullBatch, PushAnswer, SyncClient
from edgelite.storage.connection import ConnectionLimits, Role, open_connection

__all__ = ["Replicator", "SyncResult"]

_log = logging.getLogger(__name__)

PULL_ENTRIES_MAX: Final = 256
PULL_BYTES_MAX: Final = 4 * 1024 * 1024
PUSH_ENTRIES_MAX: Final = 256
PUSH_BYTES_MAX: Final = 2 * 1024 * 1024
LONG_POLL_MS: Final = 1000
BACKOFF_S_MAX: Final = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class SyncResult:
    """What one ``sync()`` did. ``applied_index``: the replica's position after it;
    ``pending``: outbox rows still waiting for their pushed version to be pulled."""

    applied_index: int
    pulled_entries: int
    pushed_entries: int
    conflicts: int
    pending: int


class Replicator:
    """See the module docstring."""

    def __init__(self, path: Path, client: SyncClient, *, sync_url: str, offline: bool,
                 busy_timeout_s: float, wall_ms: Callable[[], int] | None = None) -> None:
        self.path = path
        self.client = client
        self.sync_url = sync_url
        self.offline = offline
        self.busy_timeout_s = busy_timeout_s
        self.wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self.resolver = PolicyResolver()
        # Held around every local COMMIT of the application and while a live file is
        # replaced by a snapshot (bootstrap.install_live), so no local write is lost.
        self.commit_gate = threading.Lock()
        self.metadata: files.Metadata | None = None
        self.applied_index = 0
        self.last_error: Exception | None = None
        # Called with the new position after every apply (benchmarks measure lag here).
        self.on_applied: Callable[[int], None] | None = None
        # Called when pulled DDL or a new snapshot may have changed the schema.
        self.on_schema_change: Callable[[], None] | None = None
        self._lock = threading.RLock()
        self._applied_changed = threading.Condition(threading.Lock())
        self._apply: apsw.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- opening -----------------------------------------------------------------------

    def open(self) -> None:
        """Check or make the file; then the identity check against the server."""
        inspection = files.inspect_file(self.path)
        state = inspection.state
        if state is files.FileState.FOREIGN:
            raise NotAReplicaError(
                f"{self.path} is not an edgelite replica file ({inspection.reason}); it was "
                "left untouched: use another path for the replica")
        if state is files.FileState.MISSING:
            self._bootstrap_new([], 0, None)
        elif state in (files.FileState.CORRUPT, files.FileState.BROKEN_METADATA):
            _log.warning("replica file unusable path=%s state=%s reason=%s: re-bootstrapping",
                         self.path, state.value, inspection.reason)
            rows, clock = bootstrap.salvage_outbox(self.path)
            self._bootstrap_new(rows, clock, None)
        else:
            assert inspection.metadata is not None
            self.metadata = inspection.metadata
        self._open_apply()
        try:
            self._check_identity()
        except BaseException:
            self.close()
            raise

    def _bootstrap_new(self, rows: list[outbox.OutboxEntry], clock: int,
                       inflight: outbox.InflightPush | None) -> None:
        snapshot = bootstrap.download(self.client, self.path)
        try:
            bootstrap.prepare(snapshot, sync_url=self.sync_url, rows=rows, hlc=clock,
                              resolver=self.resolver, inflight=inflight)
            bootstrap.install_new(snapshot, self.path)
        finally:
            snapshot.path.unlink(missing_ok=True)
        self.metadata = files.Metadata(snapshot.database_id,
                                       files.cluster_of(snapshot.database_id),
                                       self.sync_url, snapshot.index)

    def _open_apply(self) -> None:
        self._apply = open_connection(self.path, Role.APPLIER, ConnectionLimits(),
                                      synchronous_full=True).connection
        self._apply.set_busy_timeout(int(self.busy_timeout_s * 1000))
        assert self.metadata is not None
        self._set_applied(self.metadata.applied_index)

    def _check_identity(self) -> None:
        """Compare with the server's database id now if it answers, else at the first
        pull (every pull answer names it)."""
        try:
            info = self.client.info()
        except SyncUnavailableError as exc:
            _log.info("replica opened offline path=%s reason=%s", self.path, exc)
            self.last_error = exc
            return
        self._same_database(info.database_id)

    def _same_database(self, database_id: str) -> None:
        assert self.metadata is not None
        if database_id != self.metadata.database_id:
            raise DatabaseMismatchError(
                f"{self.path} replicates database {self.metadata.database_id!r}, but "
                f"{self.sync_url} serves {database_id!r}; a replica file follows one "
                "database only (use another file for this one)")

    @property
    def apply_connection(self) -> apsw.Connection:
        assert self._apply is not None, "replicator is closed"
        return self._apply

    # --- sync --------------------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Push (offline replicas), then pull until current."""
        with self._lock:
            pushed, conflicts = self._push_all() if self.offline else (0, 0)
            pulled = self._pull(target=None, deadline=None)
            self.last_error = None
            return SyncResult(self.applied_index, pulled, pushed, conflicts,
                              outbox.pending_count(self.apply_connection))

    def wait_applied(self, index: int, timeout_s: float) -> None:
        """Until the file has applied ``index`` (read-your-writes after a remote write)."""
        if self.applied_index >= index:
            return
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._pull(target=index, deadline=deadline)

    def _pull(self, *, target: int | None, deadline: float | None) -> int:
        """Pull and apply until current (or, with ``target``, until past it)."""
        pulled = 0
        while True:
            behind = target is not None and self.applied_index < target
            if deadline is not None and time.monotonic() > deadline:
                raise SyncUnavailableError(
                    f"the replica did not reach index {target} in time (it is at "
                    f"{self.applied_index}; the server may be unreachable or lagging)")
            try:
                batch = self.client.pull(self.applied_index,
                                         wait_ms=LONG_POLL_MS if behind else 0,
                                         max_entries=PULL_ENTRIES_MAX,
                                         max_bytes=PULL_BYTES_MAX)
            except SnapshotRequiredError as exc:
                _log.warning("replica position no longer retained path=%s index=%d: %s",
                             self.path, self.applied_index, exc)
                self._rebootstrap_live()
                continue
            pulled += self.apply_batch(batch)
            if target is not None and self.applied_index >= target:
                return pulled
            if not batch.more and target is None:
                return pulled

    def apply_batch(self, batch: PullBatch) -> int:
        """Apply one pulled batch (rebasing local changes); entries already applied are
        skipped. Returns how many entries were applied."""
        with self._lock:
            self._same_database(batch.database_id)
            entries = [entry for entry in batch.entries if entry.index > self.applied_index]
            new_index = max([self.applied_index, batch.applied_index]
                            + [entry.index for entry in entries[-1:]])
            if new_index == self.applied_index:
                return 0
            try:
                outcome = rebase.apply_pulled(self.apply_connection, entries, new_index,
                                              self.resolver, wall_ms=self.wall_ms())
            except DivergenceError as exc:
                _log.error("replica file diverged from its outbox path=%s: %s; rebuilding "
                           "it from a snapshot", self.path, exc)
                self._rebootstrap_live()
                return 0
            if outcome.schema_changed:
                self._schema_changed()
            self._set_applied(outcome.applied_index)
            return outcome.entries_applied

    def _set_applied(self, index: int) -> None:
        with self._applied_changed:
            self.applied_index = index
            self._applied_changed.notify_all()
        if self.on_applied is not None:
            self.on_applied(index)

    def _schema_changed(self) -> None:
        if self.on_schema_change is not None:
            self.on_schema_change()

    def await_applied(self, index: int, timeout_s: float) -> bool:
        """Wait (without pulling) until someone's sync applied ``index``."""
        deadline = time.monotonic() + timeout_s
        with self._applied_changed:
            while self.applied_index < index:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._applied_changed.wait(remaining)
        return True

    def _rebootstrap_live(self) -> None:
        """Replace the live file's content by a fresh snapshot, keeping the outbox."""
        snapshot = bootstrap.download(self.client, self.path)
        try:
            connection = self.apply_connection
            with self.commit_gate:
                rows = outbox.entries(connection)
                clock = int(files.read_meta(connection, "hlc") or 0)
                inflight = outbox.inflight_push(connection)
                self._same_database(snapshot.database_id)
                bootstrap.prepare(snapshot, sync_url=self.sync_url, rows=rows, hlc=clock,
                                  resolver=self.resolver, inflight=inflight)
                bootstrap.install_live(snapshot, connection)
        finally:
            snapshot.path.unlink(missing_ok=True)
        self.metadata = files.read_metadata(self.apply_connection)
        self._schema_changed()
        self._set_applied(self.metadata.applied_index)

    # --- push --------------------------------------------------------------------------

    def _push_all(self) -> tuple[int, int]:
        pushed = conflicts = 0
        connection = self.apply_connection
        while True:
            push = outbox.inflight_push(connection) or self._next_push(connection)
            if push is None:
                return pushed, conflicts
            wanted = set(push.entry_ids)
            rows = [row for row in outbox.entries(connection, unacked_only=True)
                    if row.id in wanted]
            if rows:
                answer = self._send(push, rows)
                pushed += len(rows)
                conflicts += answer.conflicts
            with connection:
                if rows:
                    outbox.mark_acked(connection, [row.id for row in rows], answer.index)
                outbox.set_inflight_push(connection, None)

    def _next_push(self, connection: apsw.Connection) -> outbox.InflightPush | None:
        """Choose the next batch and record it before anything is sent."""
        chosen: list[int] = []
        size = 0
        for row in outbox.entries(connection, unacked_only=True):
            if chosen and (len(chosen) >= PUSH_ENTRIES_MAX
                           or size + len(row.changeset) > PUSH_BYTES_MAX):
                break
            chosen.append(row.id)
            size += len(row.changeset)
        if not chosen:
            return None
        push = outbox.InflightPush(outbox.new_request_id(), tuple(chosen))
        with connection:
            outbox.set_inflight_push(connection, push)
        return push

    def _send(self, push: outbox.InflightPush,
              rows: list[outbox.OutboxEntry]) -> PushAnswer:
        assert self.metadata is not None
        hlc_rows = [item for row in rows for item in row.hlc_rows]
        answer = self.client.push(push.request_id, self.metadata.database_id,
                                  self.applied_index, [row.changeset for row in rows],
                                  hlc_rows)
        _log.debug("replica pushed path=%s request_id=%s rows=%d index=%d again=%s",
                   self.path, push.request_id, len(rows), answer.index,
                   answer.already_applied)
        return answer

    # --- background --------------------------------------------------------------------

    def start_background(self, interval_s: float) -> None:
        assert interval_s > 0 and self._thread is None
        self._thread = threading.Thread(target=self._background, args=(interval_s,),
                                        name=f"edgelite-sync:{self.path.name}", daemon=True)
        self._thread.start()

    def _background(self, interval_s: float) -> None:
        """Offline replicas sync every ``interval_s``. Online ones keep a long poll open
        (renewed every ``interval_s``, at most ``LONG_POLL_MS``; outside the sync lock),
        so changes arrive as they commit."""
        delay_s = 0.0
        while not self._stop.wait(delay_s):
            try:
                if self.offline:
                    self.sync()
                    delay_s = interval_s
                else:
                    self._poll_once(min(int(interval_s * 1000), LONG_POLL_MS))
                    delay_s = 0.0
            except (SyncUnavailableError, apsw.BusyError) as exc:
                # The link is down or the application holds the write lock: try again,
                # backing off up to a few seconds so a restored link is noticed soon.
                self.last_error = exc
                delay_s = min(max(interval_s, delay_s * 2, 0.05), max(interval_s,
                                                                      BACKOFF_S_MAX))
                _log.debug("replica background sync failed path=%s: %s", self.path, exc)
            except Exception as exc:  # keep syncing; sync() raises it to the application
                if self._stop.is_set():
                    return
                self.last_error = exc
                delay_s = max(interval_s, BACKOFF_S_MAX)
                _log.error("replica background sync failed path=%s: %s", self.path, exc)

    def _poll_once(self, wait_ms: int) -> None:
        """One long poll from the current position, then apply what came."""
        while True:
            try:
                batch = self.client.pull(self.applied_index, wait_ms=wait_ms,
                                         max_entries=PULL_ENTRIES_MAX,
                                         max_bytes=PULL_BYTES_MAX)
            except SnapshotRequiredError:
                with self._lock:
                    self._pull(target=None, deadline=None)  # it re-bootstraps
                return
            with self._lock:
                if self._stop.is_set():
                    return
                self.apply_batch(batch)  # entries another sync applied meanwhile: skipped
            self.last_error = None
            if not batch.more:
                return
            wait_ms = 0

    def abort(self) -> None:
        """Release what can be released without waiting (a connection's finaliser): stop
        the thread, drop the HTTP client; the apply connection closes now if no sync
        holds it (otherwise with the process)."""
        self._stop.set()
        self.client.close()
        if self._lock.acquire(blocking=False):
            try:
                if self._apply is not None:
                    self._apply.close()
                    self._apply = None
            finally:
                self._lock.release()

    def close(self) -> None:
        """Stop the background thread and close the file. A thread still waiting on the
        network (a cut link) is not waited for longer than a poll: it finds the stop flag
        and leaves without touching the file."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(LONG_POLL_MS / 1000 + 1.0)
        with self._lock:
            if self._apply is not None:
                self._apply.close()
                self._apply = None
            self.client.close()
