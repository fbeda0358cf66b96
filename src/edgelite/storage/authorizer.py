"""The authorizer allow-list: what SQL a connection lets through, enforced by SQLite.

Read-only access is enforced here (plus ``SQLITE_LIMIT_ATTACHED=0`` and defensive
mode), never by parsing SQL and never by ``sqlite3_stmt_readonly`` alone, which calls
``ATTACH`` and ``PRAGMA query_only=0`` read-only (reliability.md §4).

``Mode.READ``: SELECT, reads, functions not on the deny list, recursive CTEs, pragmas
that only read, and transaction control (a reader's own read transaction).
``Mode.WRITE``: additionally INSERT / UPDATE / DELETE, DDL, ANALYZE, REINDEX, virtual
tables of allowed modules and the few pragmas ``statements`` classifies as DDL or
transaction-scoped. Never: ATTACH / DETACH, temporary objects, ``load_extension`` and
friends, writes to edgelite's reserved ``_edgelite*`` tables, other pragmas.

The authorizer only runs while SQLite prepares a statement; cached statements were
authorized under the same mode when first prepared (a connection's mode never
changes; ``internal_statements`` lifts the check only for edgelite's own SQL).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator

import apsw

from edgelite.storage import statements as st


class Mode(enum.Enum):
    READ = "read"
    WRITE = "write"


_READ_CODES = frozenset({apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_RECURSIVE,
                         apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT})


class Authorizer:
    """Callable installed as ``Connection.authorizer``; records the last denial."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.last_denial: str | None = None

    def __call__(self, code: int, arg1: str | None, arg2: str | None,
                 database: str | None, trigger_or_view: str | None) -> int:
        reason = self._denial(code, arg1, arg2, database, trigger_or_view)
        if reason is None:
            return apsw.SQLITE_OK
        self.last_denial = reason
        return apsw.SQLITE_DENY

    def _denial(self, code: int, arg1: str | None, arg2: str | None,
                database: str | None, trigger_or_view: str | None) -> str | None:
        action = st.Action(code, arg1, arg2, database, trigger_or_view)
        if code == apsw.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            return f"function {name}() is not allowed" if name in st.DENIED_FUNCTIONS else None
        if code == apsw.SQLITE_PRAGMA:
            return self._pragma_denial((arg1 or "").lower(), arg2)
        if code in _READ_CODES:
            return None
        if self.mode is Mode.READ:
            return f"{action.name} is not allowed on a read-only connection"
        return st.denied_reason((action,))

    def _pragma_denial(self, name: str, value: str | None) -> str | None:
        if name in st.TABLE_ARGUMENT_PRAGMAS or (value is None and name in st.READ_PRAGMAS):
            return None
        if self.mode is Mode.WRITE and value is not None and (
                name in st.DDL_PRAGMAS or name in st.TRANSACTION_PRAGMAS):
            return None
        return f"PRAGMA {name} is not allowed"


def install(connection: apsw.Connection, mode: Mode) -> Authorizer:
    authorizer = Authorizer(mode)
    connection.authorizer = authorizer
    return authorizer


@contextlib.contextmanager
def internal_statements(connection: apsw.Connection) -> Iterator[None]:
    """Run edgelite's own trusted SQL (state table, sequence rows) unchecked."""
    previous = connection.authorizer
    connection.authorizer = None
    try:
        yield
    finally:
        connection.authorizer = previous
