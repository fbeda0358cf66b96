"""The reserved, replicated tables of offline sync, and the row clocks of LWW tables.

* ``_edgelite_conflict_policy(table_name, policy)`` — each table's conflict policy
  (absent = ``server-wins``), set through the admin API.
* ``_edgelite_row_clock(table_name, pk, hlc)`` — for tables whose policy is
  ``last-writer-wins``: the hybrid logical clock of each row's last write (deletes
  keep theirs, so a stale update of a deleted row still compares).
* ``_edgelite_conflicts(...)`` — pushed changes the merge did not apply and kept for
  the application (``reject`` tables, and changes to tables the database lacks).

They are created together, on the leader, as DDL segments of the transaction that
first needs them, so every replica gets them from the log like any table. Clients
may read them; only edgelite writes them (the authorizer refuses ``_edgelite*``).

``pk_key`` is the one encoding of a primary key shared by the server and replicas:
compact JSON of the key's values in table column order (``[1]``, ``["a",2]``), blobs
as ``{"base64": ...}``; a table without a declared primary key is keyed by rowid.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import apsw

from edgelite.storage import hlc as hlcs
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.conflict_policy import Policy, PolicyKind, parse_policy

POLICY_TABLE = "_edgelite_conflict_policy"
ROW_CLOCK_TABLE = "_edgelite_row_clock"
CONFLICTS_TABLE = "_edgelite_conflicts"
SYNC_TABLES_DDL = (
    f"CREATE TABLE IF NOT EXISTS {POLICY_TABLE}"
    "(table_name TEXT PRIMARY KEY, policy TEXT NOT NULL) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {ROW_CLOCK_TABLE}(table_name TEXT NOT NULL, "
    "pk TEXT NOT NULL, hlc INTEGER NOT NULL, PRIMARY KEY(table_name, pk)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {CONFLICTS_TABLE}(id INTEGER PRIMARY KEY, "
    "table_name TEXT NOT NULL, pk_json TEXT NOT NULL, op TEXT NOT NULL, "
    "reason TEXT NOT NULL, pushed_json TEXT NOT NULL, current_json TEXT, "
    "received_at_ms INTEGER NOT NULL, request_id TEXT NOT NULL)",
)

Value = None | int | float | str | bytes


def json_value(value: Any) -> Any:
    """An SQLite value as JSON: blobs as ``{"base64": ...}``, non-finite reals as
    ``{"real": "inf"}`` (JSON has no infinity)."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return {"real": "inf" if value > 0 else "-inf"}
    return value


def pk_key(values: Sequence[Value]) -> str:
    """The canonical text of a primary key (values in table column order)."""
    return json.dumps([json_value(v) for v in values], separators=(",", ":"),
                      ensure_ascii=False)


def row_json(names: Sequence[str], values: Sequence[Any] | None) -> dict[str, Any] | None:
    """Column name -> JSON value, skipping values a changeset does not carry."""
    if values is None:
        return None
    return {name: json_value(value) for name, value in zip(names, values, strict=False)
            if value is not apsw.no_change}


def table_exists(connection: apsw.Connection, name: str) -> bool:
    with internal_statements(connection):
        row = connection.execute("SELECT 1 FROM main.sqlite_schema WHERE type='table' "
                                 "AND name=?", (name,)).fetchone()
    return row is not None


def read_policies(connection: apsw.Connection) -> dict[str, Policy]:
    """Every table's explicit policy (tables not listed use ``server-wins``)."""
    if not table_exists(connection, POLICY_TABLE):
        return {}
    with internal_statements(connection):
        rows = connection.execute(f"SELECT table_name, policy FROM {POLICY_TABLE}").fetchall()
    policies = {}
    for table, text in rows:
        try:
            policies[str(table)] = parse_policy(str(text))
        except ValueError:  # written by a newer edgelite? keep the safe default
            continue
    return policies


def read_clocks(connection: apsw.Connection, keys: Iterable[tuple[str, str]]) \
        -> dict[tuple[str, str], int]:
    """The stored clock of each (table, pk) that has one."""
    found: dict[tuple[str, str], int] = {}
    with internal_statements(connection):
        cursor = connection.cursor()
        for table, pk in keys:
            row = cursor.execute(f"SELECT hlc FROM {ROW_CLOCK_TABLE} WHERE table_name=? "
                                 "AND pk=?", (table, pk)).fetchone()
            if row is not None:
                found[(table, pk)] = int(row[0])
    return found


def write_clocks(connection: apsw.Connection, clocks: Mapping[tuple[str, str], int]) -> None:
    """Stamp rows; a row's clock only moves forward (past its previous value)."""
    assert connection.in_transaction
    with internal_statements(connection):
        cursor = connection.cursor()
        for (table, pk), value in sorted(clocks.items()):
            cursor.execute(
                f"INSERT INTO {ROW_CLOCK_TABLE}(table_name, pk, hlc) VALUES (?, ?, ?) "
                "ON CONFLICT(table_name, pk) DO UPDATE SET hlc=max(excluded.hlc, hlc + 1)",
                (table, pk, value))


def change_pk(change: apsw.TableChange) -> tuple[Value, ...]:
    """The primary-key values of one changeset change (old row unless an insert)."""
    row = change.new if change.op == "INSERT" else change.old
    assert row is not None
    values = tuple(row[i] for i in sorted(change.pk_columns))
    assert all(v is not apsw.no_change for v in values)  # keys are always carried
    return values  # type: ignore[return-value]


class RowClockStamper:
    """Keeps ``_edgelite_row_clock`` current on the leader's writer.

    Before a transaction commits, every row it changed in a ``last-writer-wins`` table
    gets a clock: the one a push merge set for it (``pending``), else the leader's
    next HLC. The stamps are ordinary rows of the transaction, so replicas get them
    with the change. The set of LWW tables is cached until another connection (the
    applier) changes the file or the policy table is written here (``invalidate``).

    Invariant: ``hlc`` only grows.
    """

    def __init__(self, wall_ms: Callable[[], int] | None = None) -> None:
        self.hlc = 0
        self.pending: dict[tuple[str, str], int] = {}
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self._lww: frozenset[str] | None = None
        self._data_version: int | None = None

    def invalidate(self) -> None:
        self._lww = None

    def observe(self, remote: int) -> None:
        """A clock value from a replica: later server stamps will be past it."""
        self.hlc = hlcs.hlc_receive(self.hlc, remote, self._wall_ms())

    def next(self) -> int:
        self.hlc = hlcs.hlc_now(self.hlc, self._wall_ms())
        return self.hlc

    def lww_tables(self, connection: apsw.Connection) -> frozenset[str]:
        with internal_statements(connection):
            row = connection.execute("PRAGMA data_version").fetchone()
        assert row is not None
        version = int(row[0])
        if self._lww is None or version != self._data_version:
            policies = read_policies(connection)
            self._lww = frozenset(t for t, p in policies.items()
                                  if p.kind is PolicyKind.LAST_WRITER_WINS)
            self._data_version = version
        return self._lww

    def before_commit(self, connection: apsw.Connection,
                      changesets: Callable[[], list[bytes]]) -> None:
        """Stamp the rows the open transaction changed in LWW tables."""
        pending, self.pending = self.pending, {}
        lww = self.lww_tables(connection)
        if not lww and not pending:
            return
        stamps = dict(pending)
        for changeset in changesets():
            for change in apsw.Changeset.iter(changeset):
                if change.name in lww:
                    key = (change.name, pk_key(change_pk(change)))
                    if key not in stamps:
                        stamps[key] = self.next()
        if stamps:
            write_clocks(connection, stamps)


__all__ = ["CONFLICTS_TABLE", "POLICY_TABLE", "ROW_CLOCK_TABLE", "SYNC_TABLES_DDL",
           "RowClockStamper", "change_pk", "json_value", "pk_key", "read_clocks",
           "read_policies", "row_json", "table_exists", "write_clocks"]
