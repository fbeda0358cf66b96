"""Making a replica file from a server snapshot, the first time or again.

``/v1/sync/snapshot`` is downloaded into a scratch file next to the replica (checked
against its length and sha256, fsynced), then *prepared*: WAL mode, the local tables,
the metadata (database id, cluster, URL, position), and the outbox rows that must
survive (re-applied on top of the snapshot, ``rebase.rebuild_local``). Then:

* no usable file yet (missing, corrupt, broken metadata) — ``install_new``: the
  prepared file is fsynced and renamed over the path, and the directory fsynced. No
  connection is open on the path at that moment (this happens while opening).
* a live file (the server no longer retains the replica's position, or the file
  diverged from its outbox) — ``install_live``: the prepared file is copied into the
  live one with SQLite's backup API, one write transaction: readers keep their
  snapshot and then see the new content, and a crash leaves the old or the new file.
  The caller holds its commit gate from reading the outbox to the end, so no local
  write commits in between (it would be lost with the old content).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import apsw

from edgelite.replica import files, outbox, rebase
from edgelite.replica.errors import SyncRejectedError
from edgelite.replica.remote import SnapshotFile, SyncClient
from edgelite.storage import effects
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.connection import ConnectionLimits, Role, open_connection

__all__ = ["download", "install_live", "install_new", "prepare", "salvage_outbox"]

_log = logging.getLogger(__name__)


def download(client: SyncClient, path: Path) -> SnapshotFile:
    return client.download_snapshot(path.parent, prefix=f".{path.name}.")


def salvage_outbox(path: Path) -> tuple[list[outbox.OutboxEntry], int]:
    """The outbox rows (and replica clock) of a file about to be replaced, as far as they
    can still be read; a corrupt file may have lost some (logged)."""
    try:
        connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error:
        return [], 0
    try:
        rows = outbox.entries(connection)
        hlc = files.read_meta(connection, "hlc")
        return rows, int(hlc or 0)
    except (apsw.Error, ValueError, TypeError) as exc:
        _log.error("replica outbox unreadable path=%s error=%s: local writes that were "
                   "not pushed are lost", path, exc)
        return [], 0
    finally:
        connection.close()


def prepare(snapshot: SnapshotFile, *, sync_url: str, rows: Sequence[outbox.OutboxEntry],
            hlc: int, resolver: rebase.Resolver,
            inflight: outbox.InflightPush | None = None) -> None:
    """Turn the downloaded snapshot into a replica file (see the module docstring)."""
    connection = open_connection(snapshot.path, Role.APPLIER, ConnectionLimits(),
                                 synchronous_full=True).connection
    try:
        if not _has_state(connection):
            effects.ensure_state_table(connection)  # a database no write reached yet
        state_index = effects.read_applied_index(connection)
        if state_index > snapshot.index:
            raise SyncRejectedError(
                f"the snapshot says index {snapshot.index} but holds "
                f"{effects.STATE_TABLE} at {state_index}", code="PROTOCOL_ERROR")
        connection.execute("BEGIN IMMEDIATE")
        files.create_local_tables(connection)
        files.write_meta(connection, {
            "format": files.FILE_FORMAT, "database_id": snapshot.database_id,
            "cluster_id": files.cluster_of(snapshot.database_id), "sync_url": sync_url,
            "applied_index": snapshot.index, "hlc": hlc})
        _copy_rows(connection, rows)
        outbox.set_inflight_push(connection, inflight)
        rebase.rebuild_local(connection, resolver)
        connection.execute("COMMIT")
        # Everything into the main file: only that file is renamed or copied.
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    _fsync(snapshot.path)


def install_new(snapshot: SnapshotFile, path: Path) -> None:
    """Rename the prepared file over ``path`` (no connection is open on it)."""
    for suffix in ("-wal", "-shm", "-journal"):
        # A stale WAL of the replaced file must never be replayed into the new one.
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(snapshot.path, path)
    _fsync_directory(path.parent)


def install_live(snapshot: SnapshotFile, destination: apsw.Connection) -> None:
    """Copy the prepared file into the live replica file in one transaction."""
    source = apsw.Connection(str(snapshot.path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        with destination.backup("main", source, "main") as backup:
            backup.step(-1)
    finally:
        source.close()
        snapshot.path.unlink(missing_ok=True)


def _copy_rows(connection: apsw.Connection, rows: Sequence[outbox.OutboxEntry]) -> None:
    with internal_statements(connection):
        connection.executemany(
            f"INSERT INTO {files.OUTBOX_TABLE}(id, request_id, changeset, hlc_json, "
            "created_at_ms, acked_index) VALUES (?, ?, ?, ?, ?, ?)",
            [(r.id, r.request_id, r.changeset, r.hlc_json, r.created_at_ms, r.acked_index)
             for r in rows])
    if rows:
        files.write_meta(connection, {"outbox_last_id": max(r.id for r in rows)})


def _has_state(connection: apsw.Connection) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_schema WHERE name=?",
                              (effects.STATE_TABLE,)).fetchone() is not None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be synced
        _fsync(directory)
