"""The durable catalog of a node: which namespaces exist, their settings, and the Raft
index the catalog has applied — all in one small SQLite file (``_system.db``).

Each catalog change is one transaction that also records its index, so replaying the
log after a crash applies every change exactly once (a create/delete/create sequence
replayed from scratch would otherwise destroy data).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import apsw

from edgelite.errors import StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces(
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created_index INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS catalog_state(key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;
"""


class CatalogStore:
    """Thread-safe; every method is a short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = apsw.Connection(str(self.path))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._db:
                self._db.execute(_SCHEMA)
        except apsw.Error as exc:
            raise StorageError(f"cannot open the catalog {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def applied_index(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM catalog_state WHERE key='applied_index'").fetchone()
        return int(row[0]) if row else 0

    @property
    def cluster_id(self) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM catalog_state WHERE key='cluster_id'").fetchone()
        return str(row[0]) if row else None

    def set_cluster_id(self, index: int, cluster_id: str) -> bool:
        """Record the cluster's id at ``index`` unless one is recorded (the first
        wins); False, changing nothing, when the catalog already applied ``index``."""
        with self._lock, self._db:
            if index <= self._applied_locked():
                return False
            self._db.execute("INSERT INTO catalog_state(key, value) VALUES ('cluster_id', ?) "
                             "ON CONFLICT(key) DO NOTHING", (cluster_id,))
            self._db.execute(
                "INSERT INTO catalog_state(key, value) VALUES ('applied_index', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (index,))
            return True

    def created_indexes(self) -> dict[str, int]:
        """Each namespace's creation index (its incarnation: a namespace deleted and
        created again is another database)."""
        with self._lock:
            rows = self._db.execute("SELECT name, created_index FROM namespaces").fetchall()
        return {str(name): int(index) for name, index in rows}

    def namespaces(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT name, config FROM namespaces").fetchall()
        return {str(name): json.loads(config) for name, config in rows}

    def put(self, index: int, name: str, config: dict[str, Any] | None, *,
            created: bool = False) -> bool:
        """Record a change at ``index`` (``config=None`` deletes ``name``).

        Returns False, changing nothing, when the catalog already applied ``index``.
        ``index`` 0 is for changes that are not in the log (the default namespace).
        """
        with self._lock, self._db:
            if index and index <= self._applied_locked():
                return False
            if config is None:
                self._db.execute("DELETE FROM namespaces WHERE name=?", (name,))
            elif created:
                self._db.execute(
                    "INSERT INTO namespaces(name, config, created_index) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO NOTHING", (name, json.dumps(config), index))
            else:
                self._db.execute("UPDATE namespaces SET config=? WHERE name=?",
                                 (json.dumps(config), name))
            if index:
                self._db.execute(
                    "INSERT INTO catalog_state(key, value) VALUES ('applied_index', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (index,))
            return True

    def mark_applied(self, index: int) -> None:
        with self._lock, self._db:
            if index > self._applied_locked():
                self._db.execute(
                    "INSERT INTO catalog_state(key, value) VALUES ('applied_index', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (index,))

    def _applied_locked(self) -> int:
        row = self._db.execute(
            "SELECT value FROM catalog_state WHERE key='applied_index'").fetchone()
        return int(row[0]) if row else 0
