"""What the application's own connection to a replica file may do (an authorizer).

The file mirrors a server database, so the application may not change its schema
locally (the server's schema arrives through pulled entries; a local one could never be
pushed), may not write edgelite's reserved tables, may not attach other files or switch
the file away from WAL (reads must never wait for a sync). Online replicas may not write
at all locally: their writes go to the server (``transport_online.py`` routes them).
"""

from __future__ import annotations

from typing import Final

import apsw

from edgelite.errors import SqlError
from edgelite.replica.local import LocalDatabase
from edgelite.storage.sqlite_errors import Phase
from edgelite.storage.statements import INTERNAL_TABLE_PREFIX

__all__ = ["SCHEMA_REFUSAL", "GuardedDatabase", "ReplicaGuard"]

SCHEMA_REFUSAL: Final = ("schema changes must be made on the server (an embedded replica "
                         "receives the server's schema when it syncs)")

_DDL_CODES: Final = frozenset({
    apsw.SQLITE_CREATE_INDEX, apsw.SQLITE_CREATE_TABLE, apsw.SQLITE_CREATE_TRIGGER,
    apsw.SQLITE_CREATE_VIEW, apsw.SQLITE_DROP_INDEX, apsw.SQLITE_DROP_TABLE,
    apsw.SQLITE_DROP_TRIGGER, apsw.SQLITE_DROP_VIEW, apsw.SQLITE_ALTER_TABLE,
    apsw.SQLITE_CREATE_VTABLE, apsw.SQLITE_DROP_VTABLE,
})
_DML_CODES: Final = frozenset({apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE})
# Pragmas that would change the file's format or mode, or its schema-level header.
_FIXED_PRAGMAS: Final = frozenset({"journal_mode", "locking_mode", "writable_schema",
                                   "page_size", "auto_vacuum", "query_only"})
_SCHEMA_PRAGMAS: Final = frozenset({"user_version", "application_id"})
_SCHEMA_TABLES: Final = frozenset({"sqlite_master", "sqlite_schema"})


class ReplicaGuard:
    """Callable installed as the connection's authorizer; ``last_denial`` says why."""

    def __init__(self, *, writes_allowed: bool) -> None:
        self.writes_allowed = writes_allowed
        self.last_denial: str | None = None

    def __call__(self, code: int, arg1: str | None, arg2: str | None,
                 database: str | None, trigger_or_view: str | None) -> int:
        reason = self._denial(code, arg1, arg2, database)
        if reason is None:
            return apsw.SQLITE_OK
        self.last_denial = reason
        return apsw.SQLITE_DENY

    def _denial(self, code: int, arg1: str | None, arg2: str | None,
                database: str | None) -> str | None:
        main = database in (None, "main")
        if code in _DDL_CODES and main:
            return SCHEMA_REFUSAL
        if code in _DML_CODES and main:
            table = (arg1 or "").lower()
            if table in _SCHEMA_TABLES:
                return None  # SQLite's own bookkeeping of a schema statement (refused above)
            if table.startswith(INTERNAL_TABLE_PREFIX):
                return f"table {arg1} is reserved for edgelite"
            if not self.writes_allowed:
                return "this replica's writes go to the server, not to the local file"
            return None
        if code in (apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH):
            return "ATTACH and DETACH are not allowed on a replica file"
        if code == apsw.SQLITE_PRAGMA and arg2 is not None:
            name = (arg1 or "").lower()
            if name in _SCHEMA_PRAGMAS:
                return SCHEMA_REFUSAL
            if name in _FIXED_PRAGMAS:
                return f"PRAGMA {name} cannot be changed on a replica file"
        return None


class GuardedDatabase(LocalDatabase):
    """A local-file transport over a guarded connection: a refusal says why."""

    def _sql_error(self, exc: apsw.Error, phase: Phase) -> SqlError:
        guard = self._db.authorizer
        if isinstance(exc, apsw.AuthError) and isinstance(guard, ReplicaGuard) \
                and guard.last_denial is not None:
            reason, guard.last_denial = guard.last_denial, None
            code = "SCHEMA_CHANGE_OFFLINE" if reason == SCHEMA_REFUSAL else "SQLITE_AUTH"
            return SqlError(f"not authorized: {reason}", code=code)
        return super()._sql_error(exc, phase)
