"""The replica file: an ordinary SQLite database plus edgelite's reserved tables.

A replica file holds a copy of one server database (every table, including the
server's own ``_edgelite_state`` with its applied index, so the file *is* the server's
database at that index) and two local tables the server never sees:

* ``_edgelite_replica(key PRIMARY KEY, value)`` — which database it follows
  (``database_id``, ``cluster_id``), where it last synced (``sync_url``), its
  position ``applied_index`` (the server's log index it has caught up to: every entry
  of this database up to there is applied), the replica's hybrid logical clock
  (``hlc``), the server's ``sqlite_sequence`` at that position (``server_sequence``,
  see ``rebase.py``), what the local changes currently applied are (``local_applied``,
  ``local_applied_through``, see ``rebase.py``), the last outbox id given
  (``outbox_last_id``), the push in flight (``inflight_push``) and the file ``format``.
* ``_edgelite_outbox`` — offline writes not yet reflected in the pulled state
  (``outbox.py``).

``_edgelite_state.applied_index`` stays what the server's own file holds: the index of
the last entry *of this database* applied. The position may be further on (the log is
shared by every database of a cluster, so the entries after that one may all belong to
others), hence two numbers.

Invariants: ``_edgelite_state.applied_index <= _edgelite_replica.applied_index``, both
written in the same transactions; ``database_id`` never changes for a file. A file
whose metadata breaks either is re-bootstrapped (``bootstrap.py``); a file with no
``_edgelite_replica`` table at all is not a replica and is never touched.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any, Final

import apsw

from edgelite.storage import effects
from edgelite.storage.authorizer import internal_statements

__all__ = [
    "FILE_FORMAT",
    "META_TABLE",
    "OUTBOX_TABLE",
    "FileState",
    "Metadata",
    "create_local_tables",
    "inspect_file",
    "read_meta",
    "write_meta",
]

META_TABLE: Final = "_edgelite_replica"
OUTBOX_TABLE: Final = "_edgelite_outbox"
FILE_FORMAT: Final = 1
_REQUIRED_KEYS: Final = ("format", "database_id", "cluster_id", "sync_url", "applied_index")


class FileState(enum.Enum):
    """What ``inspect_file`` found at a path."""

    MISSING = "missing"  # no file, or an empty one: bootstrap
    VALID = "valid"
    CORRUPT = "corrupt"  # fails quick_check or is not a database: re-bootstrap
    BROKEN_METADATA = "broken_metadata"  # ours, but the metadata is unusable: re-bootstrap
    FOREIGN = "foreign"  # a database that is not a replica file: refuse


@dataclasses.dataclass(frozen=True, slots=True)
class Metadata:
    """The identity and position recorded in a replica file."""

    database_id: str
    cluster_id: str
    sync_url: str
    applied_index: int

    def __post_init__(self) -> None:
        assert self.applied_index >= 0


@dataclasses.dataclass(frozen=True, slots=True)
class Inspection:
    state: FileState
    metadata: Metadata | None = None
    reason: str = ""


def cluster_of(database_id: str) -> str:
    """``cluster_id`` is the first part of ``<cluster_id>/<namespace>/<incarnation>``."""
    return database_id.split("/", 1)[0]


def create_local_tables(connection: apsw.Connection) -> None:
    """The two local tables (idempotent; inside or outside a transaction)."""
    with internal_statements(connection):
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {META_TABLE}"
            "(key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;"
            f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE}("
            " id INTEGER PRIMARY KEY,"  # capture order; never reused (AUTOINCREMENT-free:
            " request_id TEXT NOT NULL,"  # ids only grow (outbox_last_id)
            " changeset BLOB NOT NULL,"  # what the application did: pushed as is
            " hlc_json TEXT NOT NULL,"  # [[table, pk_json, hlc], ...]
            " created_at_ms INTEGER NOT NULL,"
            " acked_index INTEGER)")  # commit index of its push, once acknowledged


def write_meta(connection: apsw.Connection, values: dict[str, Any]) -> None:
    with internal_statements(connection):
        cursor = connection.cursor()
        for key, value in values.items():
            cursor.execute(f"INSERT INTO {META_TABLE}(key, value) VALUES (?, ?) "
                           "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                           (key, value), can_cache=False)


def read_meta(connection: apsw.Connection, key: str) -> Any:
    with internal_statements(connection):
        row = connection.execute(f"SELECT value FROM {META_TABLE} WHERE key=?",
                                 (key,)).fetchone()
    return None if row is None else row[0]


def read_json_meta(connection: apsw.Connection, key: str) -> Any:
    value = read_meta(connection, key)
    return None if value is None else json.loads(value)


def read_position(connection: apsw.Connection) -> int:
    return int(read_meta(connection, "applied_index") or 0)


def set_position(connection: apsw.Connection, position: int,
                 last_entry_index: int | None) -> None:
    """The replica's position, and the index of the last entry of this database applied
    (when entries were), in the caller's open transaction."""
    assert connection.in_transaction
    assert last_entry_index is None or last_entry_index <= position
    if last_entry_index is not None:
        effects.write_applied_index(connection, last_entry_index)
    write_meta(connection, {"applied_index": position})


def read_metadata(connection: apsw.Connection) -> Metadata:
    """The metadata of an open replica file; ``ValueError`` naming what is wrong."""
    with internal_statements(connection):
        rows: dict[str, Any] = {str(key): value for key, value in connection.execute(
            f"SELECT key, value FROM {META_TABLE}")}
    missing = [key for key in _REQUIRED_KEYS if rows.get(key) is None]
    if missing:
        raise ValueError(f"{META_TABLE} lacks {', '.join(missing)}")
    if rows["format"] != FILE_FORMAT:
        raise ValueError(f"unknown replica file format {rows['format']!r}")
    database_id, applied = rows["database_id"], rows["applied_index"]
    if not isinstance(database_id, str) or database_id.count("/") < 2:
        raise ValueError(f"database_id {database_id!r} is not <cluster>/<namespace>/<n>")
    if type(applied) is not int or applied < 0:
        raise ValueError(f"applied_index {applied!r} is not an index")
    state_index = effects.read_applied_index(connection)
    if state_index > applied:
        raise ValueError(f"applied_index {applied} is behind {effects.STATE_TABLE} "
                         f"({state_index}): the metadata disagrees with the data")
    if rows["cluster_id"] != cluster_of(database_id):
        raise ValueError(f"cluster_id {rows['cluster_id']!r} does not match the "
                         f"database_id {database_id!r}")
    return Metadata(database_id, str(rows["cluster_id"]), str(rows["sync_url"]), applied)


def inspect_file(path: Path) -> Inspection:
    """Classify the file at ``path`` without changing it."""
    if not path.exists() or path.stat().st_size == 0:
        return Inspection(FileState.MISSING)
    try:
        connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    except apsw.Error as exc:
        return Inspection(FileState.CORRUPT, reason=f"cannot open: {exc}")
    try:
        return _inspect(connection)
    finally:
        connection.close()


def _inspect(connection: apsw.Connection) -> Inspection:
    try:
        connection.set_busy_timeout(5000)
        checks = [str(row[0]) for row in connection.execute("PRAGMA quick_check")]
        if checks != ["ok"]:
            return Inspection(FileState.CORRUPT, reason="quick_check: " + "; ".join(checks[:5]))
        tables = {str(row[0]) for row in connection.execute(
            "SELECT name FROM sqlite_schema WHERE type='table'")}
    except (apsw.CorruptError, apsw.NotADBError) as exc:
        return Inspection(FileState.CORRUPT, reason=str(exc))
    if META_TABLE not in tables:
        if not tables:
            return Inspection(FileState.MISSING)  # an empty database: nothing to lose
        return Inspection(FileState.FOREIGN, reason=f"it has no {META_TABLE} table")
    if OUTBOX_TABLE not in tables or effects.STATE_TABLE not in tables:
        return Inspection(FileState.BROKEN_METADATA,
                          reason=f"{OUTBOX_TABLE} or {effects.STATE_TABLE} is missing")
    try:
        return Inspection(FileState.VALID, read_metadata(connection))
    except (ValueError, apsw.Error) as exc:
        return Inspection(FileState.BROKEN_METADATA, reason=str(exc))
