"""Merging changesets pushed by offline replicas, on the leader's writer.

A push is one transaction on the writer connection, so its effect is captured and
replicated like any write (ARCHITECTURE §3, §8): the changesets are applied with
SQLite's changeset apply, each conflict resolved by the table's policy
(``conflict_policy.decide``); changes kept for the application go to
``_edgelite_conflicts``; rows of last-writer-wins tables get the pushed clocks. The
commit goes through the commit step with the push's request id, so a retry with the
same id is answered ``ALREADY_APPLIED`` and merged once.

Pushed changes are applied with triggers off: the replica's session already recorded
what its triggers did. Changes to edgelite's reserved tables, to ``sqlite_*`` tables
and to virtual-table shadow tables (an FTS index cannot be merged row by row) are
refused. Changes to a table the database lacks, or whose columns no longer match
(dropped on the server meanwhile), are not lost: they are stored as conflicts with
reason ``schema``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import apsw

from edgelite.errors import LimitExceededError, ProtocolError
from edgelite.storage import hlc as hlcs
from edgelite.storage import sync_tables as st
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.conflict_policy import (
    DEFAULT_POLICY,
    MISSING,
    Conflict,
    ConflictKind,
    Op,
    Policy,
    PolicyKind,
    Resolution,
    decide,
)
from edgelite.storage.statements import INTERNAL_TABLE_PREFIX

if TYPE_CHECKING:
    from edgelite.storage.context import WriterContext
    from edgelite.storage.writer import Writer

CHANGES_PER_PUSH_MAX = 100_000
# A replica clock this far ahead of the leader's would win every last-writer-wins
# conflict for that long: such a push is refused (fix the replica's clock).
HLC_DRIFT_MS_MAX = 3_600_000
_KINDS = {apsw.SQLITE_CHANGESET_DATA: ConflictKind.DATA,
          apsw.SQLITE_CHANGESET_NOTFOUND: ConflictKind.NOTFOUND,
          apsw.SQLITE_CHANGESET_CONFLICT: ConflictKind.CONFLICT,
          apsw.SQLITE_CHANGESET_CONSTRAINT: ConflictKind.CONSTRAINT}
_ACTIONS = {Resolution.SKIP: apsw.SQLITE_CHANGESET_OMIT,
            Resolution.RECORD: apsw.SQLITE_CHANGESET_OMIT,
            Resolution.APPLY: apsw.SQLITE_CHANGESET_OMIT,  # inserted afterwards, new rowid
            Resolution.REPLACE: apsw.SQLITE_CHANGESET_REPLACE}


@dataclasses.dataclass(frozen=True, slots=True)
class Push:
    """What a replica pushed. ``clocks``: (table, pk_key) -> the change's HLC."""

    changesets: tuple[bytes, ...]
    clocks: Mapping[tuple[str, str], int]
    request_id: str
    received_at_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class MergeOutcome:
    """``applied``: changes that took effect; ``conflicts``: changes that did not
    (skipped or recorded); ``recorded``: stored in ``_edgelite_conflicts``."""

    index: int | None
    applied: int
    conflicts: int
    recorded: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Table:
    """A table as changesets see it: rowid-keyed tables carry the rowid first."""

    columns: tuple[str, ...]
    pk_columns: frozenset[int]
    rowid_keyed: bool

    def accepts(self, change: apsw.TableChange) -> bool:
        # Columns added on the server since (ALTER TABLE ADD COLUMN) are fine.
        return (change.column_count <= len(self.columns)
                and frozenset(change.pk_columns) == self.pk_columns)


@dataclasses.dataclass(slots=True)
class _Merge:
    """State of one push while its changesets are applied."""

    push: Push
    policies: dict[str, Policy]
    tables: dict[str, _Table | None]
    current_clocks: dict[tuple[str, str], int]
    # Keyed by (changeset position, table, pk): a row may change in several changesets.
    outcomes: dict[tuple[int, str, str], Resolution] = dataclasses.field(default_factory=dict)
    records: dict[tuple[int, str, str], tuple[Any, ...]] = dataclasses.field(
        default_factory=dict)
    appended: list[tuple[str, tuple[Any, ...]]] = dataclasses.field(default_factory=list)
    candidates: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)
    position: int = 0
    total: int = 0


def validate(changesets: Sequence[bytes]) -> int:
    """Check that every changeset decodes and touches only user tables; the count."""
    count = 0
    for position, changeset in enumerate(changesets):
        try:
            for change in apsw.Changeset.iter(changeset):
                _check_table(change.name)
                count += 1
        except apsw.Error as exc:
            raise ProtocolError(f"change {position} is not a valid SQLite changeset "
                                f"({exc})") from exc
        if count > CHANGES_PER_PUSH_MAX:
            raise LimitExceededError(f"a push may carry at most {CHANGES_PER_PUSH_MAX} "
                                     "row changes; push in smaller parts",
                                     limit="changes_per_push_max")
    return count


def _check_table(name: str) -> None:
    lowered = name.lower()
    if lowered.startswith(INTERNAL_TABLE_PREFIX) or lowered.startswith("sqlite_"):
        raise ProtocolError(f"a push may not change table {name} (reserved)")


def merge_program(push: Push) -> Callable[[WriterContext], MergeOutcome]:
    """A writer program (run it solo, with the push's request id) merging ``push``."""
    def program(ctx: WriterContext) -> MergeOutcome:
        outcome = merge(ctx.writer, push)
        ctx.commit_index = outcome.index
        return outcome
    return program


def clocks_of(pushed: Sequence[tuple[str, str, int]], now_ms: int) \
        -> dict[tuple[str, str], int]:
    """``[[table, pk_key, hlc], ...]`` as a map (the highest clock of a row wins), each
    checked: a valid HLC, not more than ``HLC_DRIFT_MS_MAX`` ahead of ``now_ms``."""
    clocks: dict[tuple[str, str], int] = {}
    for table, pk, value in pushed:
        try:
            ahead_ms = hlcs.drift_ms(value, now_ms)
        except ValueError as exc:
            raise ProtocolError(f"hlc of {table} {pk[:100]}: {exc}") from exc
        if ahead_ms > HLC_DRIFT_MS_MAX:
            raise ProtocolError(f"hlc of {table} {pk[:100]} is {ahead_ms // 1000}s ahead of "
                                f"the server's clock (at most {HLC_DRIFT_MS_MAX // 1000}s "
                                "allowed); fix the replica's clock")
        clocks[(table, pk)] = max(value, clocks.get((table, pk), 0))
    return clocks


def merge(writer: Writer, push: Push) -> MergeOutcome:
    validate(push.changesets)
    clocks_of([(t, pk, v) for (t, pk), v in push.clocks.items()], push.received_at_ms)
    writer.begin_transaction(False)
    connection = writer.connection
    try:
        state = _prepare(connection, push)
        connection.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 0)
        try:
            for position, changeset in enumerate(push.changesets):
                state.position = position
                _apply(connection, state, changeset)
        finally:
            connection.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 1)
        _append_rows(connection, state)
        if state.records:
            ensure_sync_tables(writer)
            _store_records(connection, state)
        _stamp_clocks(writer, state)
        index = writer.commit_transaction()
    except BaseException:
        writer.rollback_transaction()
        raise
    not_applied = sum(1 for r in state.outcomes.values()
                      if r in (Resolution.SKIP, Resolution.RECORD))
    return MergeOutcome(index, state.total - not_applied, not_applied, len(state.records))


def _prepare(connection: apsw.Connection, push: Push) -> _Merge:
    names = {change.name for changeset in push.changesets
             for change in apsw.Changeset.iter(changeset)}
    policies = st.read_policies(connection)
    tables = {name: _table(connection, name) for name in sorted(names)}
    lww = {name for name, p in policies.items() if p.kind is PolicyKind.LAST_WRITER_WINS}
    keys = {(change.name, st.pk_key(st.change_pk(change)))
            for changeset in push.changesets for change in apsw.Changeset.iter(changeset)
            if change.name in lww}
    clocks = st.read_clocks(connection, keys) if keys and st.table_exists(
        connection, st.ROW_CLOCK_TABLE) else {}
    return _Merge(push, policies, tables, clocks)


def _table(connection: apsw.Connection, name: str) -> _Table | None:
    """How changesets see table ``name``; None if it is missing or not mergeable."""
    with internal_statements(connection):
        listed = connection.execute("SELECT type, wr FROM pragma_table_list "
                                    "WHERE schema='main' AND name=?", (name,)).fetchone()
        if listed is None:
            return None
        if listed[0] == "shadow":
            raise ProtocolError(f"a push may not change {name}: it is the shadow table of "
                                "a virtual table (e.g. an FTS index), which cannot be "
                                "merged row by row")
        if listed[0] != "table":
            return None
        info = connection.execute("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid",
                                  (name,)).fetchall()
    columns = tuple(str(row[0]) for row in info)
    pk = frozenset(i for i, row in enumerate(info) if row[1])
    if not pk and not listed[1]:
        return _Table(("rowid", *columns), frozenset({0}), rowid_keyed=True)
    return _Table(columns, pk, rowid_keyed=False)


def _apply(connection: apsw.Connection, state: _Merge, changeset: bytes) -> None:
    usable: set[str] = set()
    for change in apsw.Changeset.iter(changeset):
        state.total += 1
        table = state.tables.get(change.name)
        pk = st.pk_key(st.change_pk(change))
        if table is not None and table.accepts(change):
            usable.add(change.name)
            state.candidates.append((state.position, change.name, pk))
            continue
        key = (state.position, change.name, pk)
        state.outcomes[key] = Resolution.RECORD
        state.records[key] = _record(state, change, "schema", None)

    def on_conflict(reason: int, change: apsw.TableChange) -> int:
        return _ACTIONS[_resolve(state, reason, change)] \
            if reason in _KINDS else apsw.SQLITE_CHANGESET_OMIT

    with internal_statements(connection):
        apsw.Changeset.apply(changeset, connection, filter=lambda name: name in usable,
                             conflict=on_conflict)


def _resolve(state: _Merge, reason: int, change: apsw.TableChange) -> Resolution:
    table = state.tables[change.name]
    assert table is not None
    kind = _KINDS[reason]
    op = Op(change.op.lower())
    pk = st.pk_key(st.change_pk(change))
    policy = state.policies.get(change.name, DEFAULT_POLICY)
    try:
        conflict = Conflict(kind, op, table.rowid_keyed,
                            state.push.clocks.get((change.name, pk), 0),
                            state.current_clocks.get((change.name, pk), 0),
                            *_versions(policy, table, change))
    except ValueError:  # a combination SQLite does not document: keep what is there
        conflict = Conflict(ConflictKind.CONSTRAINT, op)
    resolution = decide(policy, conflict)
    key = (state.position, change.name, pk)
    state.outcomes[key] = resolution
    state.records.pop(key, None)
    if resolution is Resolution.RECORD:
        state.records[key] = _record(state, change, kind.value, change.conflict)
    elif resolution is Resolution.APPLY:
        assert change.new is not None
        state.appended.append((change.name, tuple(change.new)))
    return resolution


def _versions(policy: Policy, table: _Table, change: apsw.TableChange) \
        -> tuple[Any, Any]:
    if policy.kind is not PolicyKind.MAX_VERSION or policy.column not in table.columns:
        return MISSING, MISSING
    i = table.columns.index(policy.column)
    if i >= change.column_count:
        return MISSING, MISSING
    row = change.old if change.op == "DELETE" else change.new
    pushed = row[i] if row is not None else MISSING
    if pushed is apsw.no_change:
        pushed = MISSING
    current = change.conflict[i] if change.conflict is not None else MISSING
    return pushed, current


def _record(state: _Merge, change: apsw.TableChange, reason: str,
            current: Sequence[Any] | None) -> tuple[Any, ...]:
    table = state.tables.get(change.name)
    names = table.columns if table is not None and change.column_count <= len(
        table.columns) else tuple(f"${i}" for i in range(change.column_count))
    pushed = {"old": st.row_json(names, change.old), "new": st.row_json(names, change.new)}
    current_json = None if current is None else json.dumps(st.row_json(names, current))
    return (change.name, st.pk_key(st.change_pk(change)), change.op.lower(), reason,
            json.dumps(pushed), current_json, state.push.received_at_ms,
            state.push.request_id)


def _append_rows(connection: apsw.Connection, state: _Merge) -> None:
    """Inserts into rowid-keyed tables whose rowid was taken: as new rows."""
    for name, values in state.appended:
        table = state.tables[name]
        assert table is not None and table.rowid_keyed
        columns = table.columns[1:len(values)]
        quoted = ", ".join(_quote(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        with internal_statements(connection):
            connection.execute(f"INSERT INTO main.{_quote(name)}({quoted}) VALUES ({marks})",
                               values[1:])


def _store_records(connection: apsw.Connection, state: _Merge) -> None:
    with internal_statements(connection):
        cursor = connection.cursor()
        for record in state.records.values():
            cursor.execute(f"INSERT INTO {st.CONFLICTS_TABLE}(table_name, pk_json, op, "
                           "reason, pushed_json, current_json, received_at_ms, request_id) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", record)


def _stamp_clocks(writer: Writer, state: _Merge) -> None:
    """Rows of LWW tables a pushed change took effect on keep the pushed clock."""
    lww = {name for name, p in state.policies.items()
           if p.kind is PolicyKind.LAST_WRITER_WINS}
    took_effect = {(table, pk) for position, table, pk in state.candidates
                   if state.outcomes.get((position, table, pk)) in (None, Resolution.REPLACE)}
    stamper = writer.row_clocks
    for (table, pk), value in state.push.clocks.items():
        if table in lww and (table, pk) in took_effect:
            stamper.pending[(table, pk)] = value
    if state.push.clocks:
        stamper.observe(max(state.push.clocks.values()))


def ensure_sync_tables(writer: Writer) -> None:
    """Create the reserved sync tables (as replicated DDL) if this database lacks them."""
    connection = writer.connection
    if all(st.table_exists(connection, name) for name in (
            st.POLICY_TABLE, st.ROW_CLOCK_TABLE, st.CONFLICTS_TABLE)):
        return
    for sql in st.SYNC_TABLES_DDL:
        writer.recorder.before_ddl()
        try:
            with internal_statements(connection):
                connection.execute(sql)
        except BaseException:
            writer.recorder.after_ddl(None)
            raise
        writer.recorder.after_ddl(sql)


def set_policy_program(table: str, policy: Policy) -> Callable[[WriterContext], int | None]:
    """A writer program (run it solo) that sets ``table``'s conflict policy."""
    def program(ctx: WriterContext) -> int | None:
        writer = ctx.writer
        writer.begin_transaction(False)
        try:
            _check_policy_target(writer.connection, table, policy)
            ensure_sync_tables(writer)
            with internal_statements(writer.connection):
                writer.connection.execute(
                    f"INSERT INTO {st.POLICY_TABLE}(table_name, policy) VALUES (?, ?) "
                    "ON CONFLICT(table_name) DO UPDATE SET policy=excluded.policy",
                    (table, policy.text))
            writer.row_clocks.invalidate()
            index = writer.commit_transaction()
        except BaseException:
            writer.rollback_transaction()
            raise
        ctx.commit_index = index
        return index
    return program


def _check_policy_target(connection: apsw.Connection, table: str, policy: Policy) -> None:
    _check_table(table)
    found = _table(connection, table)
    if found is None:
        raise ProtocolError(f"table `{table}` does not exist (conflict policies apply to "
                            "ordinary tables)")
    if policy.kind is PolicyKind.MAX_VERSION and policy.column not in found.columns:
        raise ProtocolError(f"table `{table}` has no column `{policy.column}` for "
                            f"{policy.text}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = ["CHANGES_PER_PUSH_MAX", "MergeOutcome", "Push", "clocks_of", "ensure_sync_tables",
           "merge", "merge_program", "set_policy_program", "validate"]
