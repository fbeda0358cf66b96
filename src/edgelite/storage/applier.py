"""Applying committed log entries to a database, and remembering which requests did.

``Applier`` owns a database's APPLIER connection (triggers and foreign keys off,
shadow tables writable) and is used only from the database's writer thread, so an
apply never races a client transaction. Each apply is one transaction holding the
effect, the request ids it answers and the new applied index — so it happens exactly
once, across crashes (ARCHITECTURE §3).

Request ids (Raft thesis §6.3): every write may carry an id; the ids an entry answers
are stored with its index in ``_edgelite_requests`` on every node alike (and pruned
alike, by index), so a retry with the same id is recognised and not applied twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import apsw

from edgelite.errors import StorageError, StorageUnavailableError
from edgelite.storage import effects
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.connection import ConnectionLimits, Role, open_connection

# SQLite errors that say the machine refused (space, I/O, permissions, memory, locks),
# not that the change is wrong: applying again later can succeed.
ENVIRONMENT_ERRORS = (apsw.FullError, apsw.IOError, apsw.CantOpenError, apsw.ReadOnlyError,
                      apsw.NoMemError, apsw.BusyError)

# How many log indexes back a request id is remembered (deterministic pruning).
REQUEST_IDS_RETAINED_INDEXES = 100_000


def record_requests(connection: apsw.Connection, request_ids: Sequence[str],
                    index: int) -> None:
    """In the open transaction: these requests were applied at ``index``."""
    assert connection.in_transaction
    if not request_ids:
        return
    with internal_statements(connection):
        cursor = connection.cursor()
        for request_id in request_ids:
            cursor.execute(f"INSERT OR REPLACE INTO {effects.REQUESTS_TABLE}(id, applied_at) "
                           "VALUES (?, ?)", (request_id, index), can_cache=False)
        cursor.execute(f"DELETE FROM {effects.REQUESTS_TABLE} WHERE applied_at < ?",
                       (index - REQUEST_IDS_RETAINED_INDEXES,), can_cache=False)


def request_applied_at(connection: apsw.Connection, request_id: str) -> int | None:
    with internal_statements(connection):
        row = connection.cursor().execute(
            f"SELECT applied_at FROM {effects.REQUESTS_TABLE} WHERE id=?", (request_id,),
            can_cache=False).fetchone()
    return int(row[0]) if row else None


def read_request(path: Path, request_id: str) -> int | None:
    """From a fresh read-only connection: the index ``request_id`` was applied at."""
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return request_applied_at(connection, request_id)
    finally:
        connection.close()


class Applier:
    def __init__(self, path: Path, limits: ConnectionLimits, *, synchronous_full: bool) -> None:
        self.connection = open_connection(path, Role.APPLIER, limits,
                                          synchronous_full=synchronous_full).connection

    def apply(self, index: int, effect_bytes: bytes, request_ids: Sequence[str]) -> None:
        """Apply one committed entry. Raises ``DivergenceError`` on any conflict and
        ``StorageError`` if it could not be made durable; nothing is applied then."""
        connection = self.connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            effects.apply_effect(connection, effects.decode_effect(effect_bytes))
            record_requests(connection, request_ids, index)
            effects.write_applied_index(connection, index)
            connection.execute("COMMIT")
        except apsw.Error as exc:
            self._roll_back()
            if self._committed_anyway(index):
                return
            if isinstance(exc, ENVIRONMENT_ERRORS):
                raise StorageUnavailableError(f"applying index {index} failed: {exc}") \
                    from exc
            raise StorageError(f"applying index {index} failed: {exc}") from exc
        except BaseException:
            self._roll_back()
            raise

    def _committed_anyway(self, index: int) -> bool:
        """COMMIT can report an error after committing (the WAL auto-checkpoint that
        runs after it failed, e.g. on a full disk): then the entry is applied."""
        try:
            return effects.read_applied_index(self.connection) >= index
        except apsw.Error:
            return False

    def _roll_back(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def close(self) -> None:
        self.connection.close()
