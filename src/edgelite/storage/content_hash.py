"""A digest of a database's replicated content, to check that replicas are equal.

Covers the schema and every row of every table (shadow tables included) in a fixed
order, plus ``sqlite_sequence``; leaves out edgelite's per-node tables (the applied
index and request ids are written by each node for itself).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import apsw

from edgelite.storage.statements import INTERNAL_TABLE_PREFIX


def content_hash(path: Path) -> tuple[int, str]:
    """``(applied_index, sha256 hex)`` of the committed state of the database file."""
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        connection.execute("BEGIN")  # one snapshot for the index and the content
        digest = hashlib.sha256()
        tables = [str(name) for (name,) in connection.execute(
            "SELECT name FROM sqlite_schema WHERE type='table' ORDER BY name")]
        for (kind, name, sql) in connection.execute(
                "SELECT type, name, sql FROM sqlite_schema ORDER BY type, name"):
            if not str(name).startswith(INTERNAL_TABLE_PREFIX):
                digest.update(repr((kind, name, sql)).encode())
        for table in tables:
            if table.startswith(INTERNAL_TABLE_PREFIX):
                continue
            quoted = '"' + table.replace('"', '""') + '"'
            digest.update(b"\x00table " + table.encode())
            order = ", ".join(str(i) for i in range(1, _columns(connection, quoted) + 1))
            for row in connection.execute(f"SELECT * FROM {quoted} ORDER BY {order}"):
                digest.update(repr(row).encode())
        row = connection.execute(
            "SELECT value FROM _edgelite_state WHERE key='applied_index'").fetchone() \
            if "_edgelite_state" in tables else None
        connection.execute("COMMIT")
        return (int(row[0]) if row else 0), digest.hexdigest()
    finally:
        connection.close()


def _columns(connection: apsw.Connection, quoted: str) -> int:
    return len(connection.execute(f"PRAGMA table_info({quoted})").fetchall())
