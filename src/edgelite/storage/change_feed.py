"""Decoding a transaction's effect into row changes, for change streams (CDC).

An effect (``effects.Effect``) is changesets and DDL statements; a change consumer
wants ``{table, op, pk, old, new}`` with column names. Changesets carry values by
position only, so names come from the table's schema as this node has it now
(``TableShapes``, read from the database file): a change made before a later
``ALTER TABLE`` is reported with today's names (columns added since are simply
absent); if it has more columns than the table has today (a column dropped since, a
table dropped since), its values are named by position: ``"$0"``, ``"$1"``, ...

Every row change of an entry has an ``offset`` (its position among all the entry's
row changes, whatever a consumer filters), so a cursor ``(index, offset)`` resumes
exactly. Reserved ``_edgelite*`` tables, ``sqlite_*`` tables and virtual-table shadow
tables are not reported unless asked for by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw

from edgelite.storage import effects
from edgelite.storage.statements import INTERNAL_TABLE_PREFIX
from edgelite.storage.sync_tables import (
    CONFLICTS_TABLE,
    POLICY_TABLE,
    ROW_CLOCK_TABLE,
    SYNC_TABLES_DDL,
    json_value,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """A table as changesets see it (rowid-keyed tables carry the rowid first)."""

    columns: tuple[str, ...]
    pk_columns: frozenset[int]
    rowid_keyed: bool
    hidden: bool  # not reported unless asked for by name


@dataclasses.dataclass(frozen=True, slots=True)
class RowChange:
    offset: int
    table: str
    op: str  # insert | update | delete
    pk: dict[str, Any]
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaChange:
    sql: str


def read_shapes(path: Path) -> dict[str, Shape]:
    """Blocking: every table of the database file at ``path``, as changesets see it."""
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        shapes = {}
        tables = connection.execute("SELECT name, type, wr FROM pragma_table_list "
                                    "WHERE schema='main'").fetchall()
        for name, kind, without_rowid in tables:
            if kind not in ("table", "shadow"):
                continue
            info = connection.execute("SELECT name, pk FROM pragma_table_info(?) "
                                      "ORDER BY cid", (name,)).fetchall()
            columns = tuple(str(row[0]) for row in info)
            pk = frozenset(i for i, row in enumerate(info) if row[1])
            hidden = kind == "shadow" or _reserved(str(name))
            if not pk and not without_rowid:
                shapes[str(name)] = Shape(("rowid", *columns), frozenset({0}), True, hidden)
            else:
                shapes[str(name)] = Shape(columns, pk, False, hidden)
        return shapes
    finally:
        connection.close()


def _reserved(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(INTERNAL_TABLE_PREFIX) or lowered.startswith("sqlite_")


def decode(effect_bytes: bytes) -> Iterator[apsw.TableChange | SchemaChange]:
    """The effect's row changes and DDL statements, in transaction order."""
    effect = effects.decode_effect(effect_bytes)
    for segment in effect.segments:
        if segment.kind is effects.SegmentKind.DDL:
            yield SchemaChange(segment.sql)
        else:
            yield from apsw.Changeset.iter(segment.payload)


def row_change(offset: int, change: apsw.TableChange, shape: Shape | None) -> RowChange:
    """One changeset change with column names (by position if the shape does not fit)."""
    if shape is not None and change.column_count <= len(shape.columns):
        names = shape.columns
    else:
        names = tuple(f"${i}" for i in range(change.column_count))
    key_row = change.new if change.op == "INSERT" else change.old
    assert key_row is not None
    pk = {names[i]: json_value(key_row[i]) for i in sorted(change.pk_columns)}
    return RowChange(offset, change.name, change.op.lower(), pk, _named(names, change.old),
                     _named(names, change.new))


def _named(names: tuple[str, ...], values: Any) -> dict[str, Any] | None:
    if values is None:
        return None
    return {name: json_value(value) for name, value in zip(names, values, strict=False)
            if value is not apsw.no_change}


def internal_schema(sql: str, tables: frozenset[str] | None) -> bool:
    """Whether a schema statement is edgelite creating its own sync tables (not
    reported unless one of them is asked for by name)."""
    for ddl, name in zip(SYNC_TABLES_DDL, (POLICY_TABLE, ROW_CLOCK_TABLE, CONFLICTS_TABLE),
                         strict=True):
        if sql == ddl:
            return tables is None or name not in tables
    return False


def reported(table: str, shape: Shape | None, tables: frozenset[str] | None) -> bool:
    """Whether a change to ``table`` goes to a consumer asking for ``tables``."""
    if tables is not None:
        return table in tables
    if shape is not None:
        return not shape.hidden
    return not _reserved(table)


__all__ = ["RowChange", "SchemaChange", "Shape", "decode", "internal_schema", "read_shapes",
           "reported", "row_change"]
