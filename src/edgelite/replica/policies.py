"""Re-applying a local change the way the server will merge it.

While rebasing (``rebase.py``), a local change that conflicts with the pulled state is
decided by the server's own pure function (``storage.conflict_policy.decide``) with
the same inputs the leader's merge uses (``storage.merge``): the table's policy from
the replicated ``_edgelite_conflict_policy``, the change's clock and the row's clock
from the replicated ``_edgelite_row_clock``, the version values. So what a replica
shows before its push is acknowledged is what the server will decide, as far as the
replica can know (the server may meanwhile have taken other changes).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import apsw

from edgelite.storage import sync_tables
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

__all__ = ["PolicyResolver"]

_KINDS = {apsw.SQLITE_CHANGESET_DATA: ConflictKind.DATA,
          apsw.SQLITE_CHANGESET_NOTFOUND: ConflictKind.NOTFOUND,
          apsw.SQLITE_CHANGESET_CONFLICT: ConflictKind.CONFLICT,
          apsw.SQLITE_CHANGESET_CONSTRAINT: ConflictKind.CONSTRAINT}


@dataclasses.dataclass(frozen=True, slots=True)
class _Table:
    """A table as changesets see it: rowid-keyed tables carry the rowid first."""

    columns: tuple[str, ...]
    rowid_keyed: bool


class PolicyResolver:
    """Decides conflicts of one rebase; ``reset`` before each (policies may change with
    the pulled entries)."""

    def __init__(self) -> None:
        self._policies: dict[str, Policy] | None = None
        self._tables: dict[str, _Table | None] = {}

    def reset(self) -> None:
        self._policies = None
        self._tables = {}

    def table_columns(self, connection: apsw.Connection, name: str) -> tuple[str, ...]:
        table = self._table(connection, name)
        assert table is not None
        return table.columns

    def resolve(self, connection: apsw.Connection, reason: int, change: apsw.TableChange,
                hlc: int) -> Resolution:
        kind = _KINDS.get(reason)
        table = self._table(connection, change.name)
        if kind is None or table is None:
            return Resolution.SKIP
        if self._policies is None:
            self._policies = sync_tables.read_policies(connection)
        policy = self._policies.get(change.name, DEFAULT_POLICY)
        pk = sync_tables.pk_key(sync_tables.change_pk(change))
        current_hlc = 0
        if policy.kind is PolicyKind.LAST_WRITER_WINS and sync_tables.table_exists(
                connection, sync_tables.ROW_CLOCK_TABLE):
            current_hlc = sync_tables.read_clocks(connection, [(change.name, pk)]).get(
                (change.name, pk), 0)
        try:
            conflict = Conflict(kind, Op(change.op.lower()), table.rowid_keyed, hlc,
                                current_hlc, *_versions(policy, table, change))
        except ValueError:  # a combination SQLite does not document: keep what is there
            conflict = Conflict(ConflictKind.CONSTRAINT, Op(change.op.lower()))
        return decide(policy, conflict)

    def _table(self, connection: apsw.Connection, name: str) -> _Table | None:
        if name not in self._tables:
            self._tables[name] = _describe(connection, name)
        return self._tables[name]


def _describe(connection: apsw.Connection, name: str) -> _Table | None:
    with internal_statements(connection):
        listed = connection.execute("SELECT type, wr FROM pragma_table_list "
                                    "WHERE schema='main' AND name=?", (name,)).fetchone()
        if listed is None or listed[0] != "table":
            return None
        info = connection.execute("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid",
                                  (name,)).fetchall()
    columns = tuple(str(row[0]) for row in info)
    if not any(row[1] for row in info) and not listed[1]:
        return _Table(("rowid", *columns), rowid_keyed=True)
    return _Table(columns, rowid_keyed=False)


def _versions(policy: Policy, table: _Table, change: apsw.TableChange) -> tuple[Any, Any]:
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
