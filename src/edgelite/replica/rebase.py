"""Applying pulled entries to a replica file, rebasing unpushed local changes on top.

The file of an offline replica is the server's database at ``applied_index`` plus the
local changes of its outbox. What those changes did to the file is known exactly:
``local_applied`` (metadata) is the session changeset recorded while the last rebase
re-applied the rows up to ``local_applied_through``, and every row captured since sits
on top as its own changeset. ``apply_pulled`` moves the file to a later index in one
transaction on the replica's apply connection (triggers and foreign keys off, like a
cluster follower):

1. combine ``local_applied`` with the newer rows' changesets (one changegroup), invert
   it and apply it, and restore the server's ``sqlite_sequence`` -> exactly the
   server's state at ``applied_index``;
2. apply the pulled entries (``storage.effects.apply_effect``, request ids recorded,
   position stored) -> the server's state at the new index;
3. drop outbox rows whose push the pulled entries contain (``acked_index`` <= index);
4. re-apply the other rows' original changesets in order, under one session,
   resolving each conflict with the table's policy (``policies.py``: the server's own
   decision function); the session's changeset becomes the new ``local_applied``.

Steps 1 and 4 are a handful of C calls however long the outbox is, so a sync holds the
write lock briefly even with thousands of pending local writes.

Readers on other connections see the old state until COMMIT, then the new one; they
are never blocked (WAL). A conflict in step 1 or 2 means the file is not what the
outbox says it is (a bug, or someone wrote to it behind edgelite's back): it raises
``DivergenceError`` and the caller rebuilds the file from a snapshot.

Invariant (asserted by the tests): with an empty outbox the file's replicated content
equals the server's at ``applied_index`` (same ``storage.content_hash``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, Final, Protocol

import apsw

from edgelite.errors import DivergenceError
from edgelite.replica import files, outbox
from edgelite.replica.remote import PulledEntry
from edgelite.storage import effects, hlc
from edgelite.storage.applier import record_requests
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.conflict_policy import Resolution
from edgelite.storage.sync_tables import change_pk, pk_key

__all__ = ["RebaseOutcome", "Resolver", "apply_pulled", "rebuild_local", "undo_local"]

# SQLite lets a conflict handler REPLACE only for these kinds.
_REPLACEABLE: Final = frozenset({apsw.SQLITE_CHANGESET_DATA, apsw.SQLITE_CHANGESET_CONFLICT})


class Resolver(Protocol):
    """Decides conflicts while local changes are re-applied (``policies.py``)."""

    def reset(self) -> None:
        """A new rebase begins (policies and tables may have changed)."""

    def resolve(self, connection: apsw.Connection, reason: int,
                change: apsw.TableChange, hlc: int) -> Resolution:
        """The resolution of one conflict; ``hlc`` is the local change's clock."""

    def table_columns(self, connection: apsw.Connection, name: str) -> tuple[str, ...]:
        """The table's columns as changesets see them (rowid first if rowid-keyed)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RebaseOutcome:
    applied_index: int
    entries_applied: int
    local_dropped: int  # outbox rows whose pushed version was pulled
    local_reapplied: int  # outbox rows re-applied on top
    changes_omitted: int  # local row changes a conflict policy set aside
    schema_changed: bool = False  # a pulled entry carried DDL


def undo_local(connection: apsw.Connection, rows: Sequence[outbox.OutboxEntry]) -> bool:
    """Step 1, in the caller's transaction: back to the server's state. Returns whether
    there was anything local to undo."""
    assert connection.in_transaction
    through = int(files.read_meta(connection, "local_applied_through") or 0)
    parts = [files.read_meta(connection, "local_applied") or b""]
    parts += [row.changeset for row in rows if row.id > through]
    parts = [bytes(part) for part in parts if part]
    if not parts:
        return False
    builder = apsw.ChangesetBuilder()  # type: ignore[no-untyped-call]
    try:
        for part in parts:
            builder.add(part)
        combined = builder.output()
    finally:
        builder.close()
    if combined:
        _apply_strict(connection, apsw.Changeset.invert(combined), "undoing local changes")
    _restore_server_sequence(connection)
    return True


def apply_pulled(connection: apsw.Connection, entries: Sequence[PulledEntry],
                 new_index: int, resolver: Resolver, *, wall_ms: int) -> RebaseOutcome:
    """Steps 1-4 in one transaction (see the module docstring)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        previous = files.read_position(connection)
        assert new_index >= previous, f"the position only grows ({previous} -> {new_index})"
        entries = [entry for entry in entries if entry.index > previous]
        rows = outbox.entries(connection)
        local = undo_local(connection, rows)
        schema_changed = False
        for entry in entries:
            effect = effects.decode_effect(entry.effect)
            schema_changed = schema_changed or any(
                segment.kind is effects.SegmentKind.DDL for segment in effect.segments)
            effects.apply_effect(connection, effect)
            record_requests(connection, entry.request_ids, entry.index)
        files.set_position(connection, new_index, entries[-1].index if entries else None)
        _remember_server_sequence(connection)
        dropped = outbox.drop_acked_through(connection, new_index) if rows else 0
        omitted = reapply_local(connection, resolver) if local or rows else 0
        if entries:
            _observe_clock(connection, entries[-1].committed_at_ms, wall_ms)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return RebaseOutcome(new_index, len(entries), dropped, len(rows) - dropped, omitted,
                         schema_changed)


def reapply_local(connection: apsw.Connection, resolver: Resolver) -> int:
    """Step 4 for every outbox row; returns how many row changes were set aside."""
    resolver.reset()
    rows = outbox.entries(connection)
    omitted = 0
    session = outbox.open_session(connection)
    try:
        for row in rows:
            omitted += _reapply(connection, row, resolver)
        applied = session.changeset()
    finally:
        session.close()
    files.write_meta(connection, {
        "local_applied": applied,
        "local_applied_through": max([row.id for row in rows], default=0)})
    return omitted


def rebuild_local(connection: apsw.Connection, resolver: Resolver) -> int:
    """After the file was replaced by a snapshot that kept the outbox rows: drop those
    the snapshot contains and re-apply the rest (in the caller's transaction)."""
    assert connection.in_transaction
    index = files.read_position(connection)
    _remember_server_sequence(connection)
    outbox.drop_acked_through(connection, index)
    return reapply_local(connection, resolver)


def _reapply(connection: apsw.Connection, row: outbox.OutboxEntry,
             resolver: Resolver) -> int:
    """Re-apply one row's changeset (inside the caller's session); returns how many of
    its changes were set aside."""
    clocks = {(str(table), str(pk)): int(str(hlc)) for table, pk, hlc in row.hlc_rows}
    appended: list[tuple[str, tuple[Any, ...]]] = []
    omitted = 0

    def on_conflict(reason: int, change: apsw.TableChange) -> int:
        nonlocal omitted
        key = (change.name, pk_key(change_pk(change)))
        resolution = resolver.resolve(connection, reason, change, clocks.get(key, 0))
        if resolution is Resolution.REPLACE and reason in _REPLACEABLE:
            return apsw.SQLITE_CHANGESET_REPLACE
        if resolution is Resolution.APPLY:
            assert change.new is not None  # an insert whose rowid was taken
            appended.append((change.name, tuple(change.new)))
        else:
            omitted += 1
        return apsw.SQLITE_CHANGESET_OMIT

    apsw.Changeset.apply(row.changeset, connection, conflict=on_conflict)
    for name, values in appended:
        _insert_as_new_row(connection, resolver.table_columns(connection, name), name, values)
    return omitted


def _insert_as_new_row(connection: apsw.Connection, columns: Sequence[str], table: str,
                       values: tuple[Any, ...]) -> None:
    """An insert into a rowid-keyed table whose rowid is taken: a new row, as the
    server's merge does (a rowid is not a row's identity there)."""
    names = columns[1:len(values)]
    quoted = ", ".join(_quote(name) for name in names)
    marks = ", ".join("?" for _ in names)
    with internal_statements(connection):
        connection.execute(f"INSERT INTO main.{_quote(table)}({quoted}) VALUES ({marks})",
                           values[1:])


def _observe_clock(connection: apsw.Connection, committed_at_ms: int, wall_ms: int) -> None:
    """Pulled writes happened before the replica's next local write (causality)."""
    local = int(files.read_meta(connection, "hlc") or 0)
    remote = hlc.pack(min(committed_at_ms, hlc.PHYSICAL_MAX_MS), 0)
    files.write_meta(connection, {"hlc": hlc.hlc_receive(local, remote, wall_ms)})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _apply_strict(connection: apsw.Connection, changeset: bytes, what: str) -> None:
    conflicts: list[str] = []

    def on_conflict(reason: int, change: apsw.TableChange) -> int:
        conflicts.append(f"{apsw.mapping_session_conflict.get(reason, reason)} on "
                         f"{change.name} ({change.op})")
        return apsw.SQLITE_CHANGESET_ABORT

    try:
        apsw.Changeset.apply(changeset, connection, conflict=on_conflict)
    except apsw.AbortError as exc:
        raise DivergenceError(f"{what}: the replica file does not hold what its outbox "
                              f"says ({'; '.join(conflicts)})") from exc


def _remember_server_sequence(connection: apsw.Connection) -> None:
    """The server's counters at the applied index, before local inserts move them."""
    sequence = effects.read_sequence(connection)
    files.write_meta(connection, {"server_sequence": json.dumps(sorted(sequence.items()))})


def _restore_server_sequence(connection: apsw.Connection) -> None:
    saved = files.read_json_meta(connection, "server_sequence")
    target = {str(name): int(seq) for name, seq in (saved or [])}
    current = effects.read_sequence(connection)
    if current == target:
        return
    with internal_statements(connection):
        cursor = connection.cursor()
        for name in current.keys() - target.keys():
            cursor.execute("DELETE FROM sqlite_sequence WHERE name=?", (name,))
        for name, seq in target.items():
            if name in current:
                cursor.execute("UPDATE sqlite_sequence SET seq=? WHERE name=?", (seq, name))
            else:
                cursor.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)",
                               (name, seq))
