"""The durable outbox of an offline replica, and the capture that fills it.

Every local write transaction of an offline replica commits together with one outbox
row holding its changeset (SQLite session extension), so a write is in the outbox iff
it is in the file — across crashes, by construction. A row lives until the server's
version of it has been pulled:

1. captured: ``changeset`` (what the application did; pushed as is, with its
   ``request_id``), applied to the file as it is;
2. pushed: ``acked_index`` = the commit index the server answered (or reported for an
   earlier attempt with the same request id, ``ALREADY_APPLIED``);
3. dropped in the rebase that pulls ``acked_index``: from then on the pulled entry,
   merged by the server's conflict policy, is the truth.

A rebase (``rebase.py``) undoes what the rows changed in the file, applies pulled
entries and re-applies the changesets of the rows still waiting. Row ids only grow
(``outbox_last_id``), so "rows after ``local_applied_through``" is well defined.

The push in flight is recorded before it is sent (``inflight_push`` in the metadata:
its request id and the row ids it carries), so a retry after a lost answer sends the
same rows under the same id and the server applies them once.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable, Sequence
from typing import Final

import apsw

from edgelite.replica.files import META_TABLE, OUTBOX_TABLE, read_meta, write_meta
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.sync_tables import change_pk, pk_key

__all__ = [
    "Capture",
    "InflightPush",
    "OutboxEntry",
    "drop_acked_through",
    "entries",
    "inflight_push",
    "mark_acked",
    "pending_count",
    "set_inflight_push",
]

_COLUMNS: Final = "id, request_id, changeset, hlc_json, created_at_ms, acked_index"


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    request_id: str
    changeset: bytes
    hlc_json: str
    created_at_ms: int
    acked_index: int | None

    @property
    def hlc_rows(self) -> list[list[object]]:
        """``[[table, pk_json, hlc], ...]`` as pushed."""
        rows: list[list[object]] = json.loads(self.hlc_json)
        return rows


@dataclasses.dataclass(frozen=True, slots=True)
class InflightPush:
    """A push that was (maybe) sent: retried as exactly these rows under this id."""

    request_id: str
    entry_ids: tuple[int, ...]


def new_request_id() -> str:
    return "rep-" + secrets.token_hex(16)


def entries(connection: apsw.Connection, *, unacked_only: bool = False) -> list[OutboxEntry]:
    where = " WHERE acked_index IS NULL" if unacked_only else ""
    with internal_statements(connection):
        rows = connection.execute(f"SELECT {_COLUMNS} FROM {OUTBOX_TABLE}{where} ORDER BY id")
        return [OutboxEntry(int(r[0]), str(r[1]), bytes(r[2]), str(r[3]), int(r[4]),
                            None if r[5] is None else int(r[5])) for r in rows]


def pending_count(connection: apsw.Connection) -> int:
    with internal_statements(connection):
        row = connection.execute(f"SELECT count(*) FROM {OUTBOX_TABLE}").fetchone()
    return int(row[0]) if row else 0


def append(connection: apsw.Connection, changeset: bytes, hlc_rows: Sequence[list[object]],
           created_at_ms: int) -> None:
    """Add a captured transaction, in the caller's open transaction."""
    assert connection.in_transaction and changeset
    entry_id = int(read_meta(connection, "outbox_last_id") or 0) + 1
    write_meta(connection, {"outbox_last_id": entry_id})
    with internal_statements(connection):
        connection.execute(
            f"INSERT INTO {OUTBOX_TABLE}(id, request_id, changeset, hlc_json, "
            "created_at_ms, acked_index) VALUES (?, ?, ?, ?, ?, NULL)",
            (entry_id, new_request_id(), changeset,
             json.dumps(hlc_rows, separators=(",", ":")), created_at_ms))


def mark_acked(connection: apsw.Connection, entry_ids: Sequence[int], index: int) -> None:
    with internal_statements(connection):
        connection.executemany(
            f"UPDATE {OUTBOX_TABLE} SET acked_index=? WHERE id=? AND acked_index IS NULL",
            [(index, entry_id) for entry_id in entry_ids])


def drop_acked_through(connection: apsw.Connection, index: int) -> int:
    """Forget rows whose pushed version is in the pulled state (index <= ``index``)."""
    assert connection.in_transaction
    with internal_statements(connection):
        connection.execute(f"DELETE FROM {OUTBOX_TABLE} WHERE acked_index <= ?", (index,))
    return connection.changes()


def inflight_push(connection: apsw.Connection) -> InflightPush | None:
    value = read_meta(connection, "inflight_push")
    if value is None:
        return None
    record = json.loads(value)
    return InflightPush(str(record["request_id"]), tuple(int(i) for i in record["entry_ids"]))


def set_inflight_push(connection: apsw.Connection, push: InflightPush | None) -> None:
    if push is None:
        with internal_statements(connection):
            connection.execute(f"DELETE FROM {META_TABLE} WHERE key='inflight_push'")
        return
    write_meta(connection, {"inflight_push": json.dumps(
        {"request_id": push.request_id, "entry_ids": list(push.entry_ids)})})


def replicated_table(name: str) -> bool:
    """Tables whose local changes are captured: not edgelite's, not sqlite_sequence
    (the server keeps its own counters; ``rebase.py`` restores the server's)."""
    return not name.startswith("_edgelite") and name != "sqlite_sequence"


def open_session(connection: apsw.Connection) -> apsw.Session:
    session = apsw.Session(connection, "main")
    # Rowid tables without a PRIMARY KEY (the seed's readings table) are recorded too.
    session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
    session.table_filter(replicated_table)
    session.attach(None)
    return session


class Capture:
    """Records the changes of one local write transaction into the outbox.

    Lifecycle per transaction: ``start()`` when it begins, ``flush()`` just before its
    COMMIT (inside the transaction: the outbox row commits with the data), ``stop()``
    after COMMIT or ROLLBACK. ``flush`` resets the session, so a COMMIT that fails and
    is retried adds nothing twice. ``next_hlc(previous)`` gives the hybrid logical clock
    of a new local write (the replica's clock persists in the metadata).
    """

    def __init__(self, connection: apsw.Connection, *, wall_ms: Callable[[], int],
                 next_hlc: Callable[[int, int], int]) -> None:
        self._connection = connection
        self._wall_ms = wall_ms
        self._next_hlc = next_hlc
        self._session: apsw.Session | None = None

    @property
    def active(self) -> bool:
        return self._session is not None

    def start(self) -> None:
        if self._session is None:
            self._session = open_session(self._connection)

    def flush(self) -> bool:
        """Move the captured changes into an outbox row; True if there were any."""
        assert self._session is not None and self._connection.in_transaction
        changeset = self._session.changeset()
        self.stop()
        self.start()
        if not changeset:
            return False
        now_ms = self._wall_ms()
        previous = read_meta(self._connection, "hlc")
        hlc = self._next_hlc(int(previous or 0), now_ms)
        write_meta(self._connection, {"hlc": hlc})
        rows = [[change.name, pk_key(change_pk(change)), hlc]
                for change in apsw.Changeset.iter(changeset)]
        append(self._connection, changeset, rows, now_ms)
        return True

    def stop(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
