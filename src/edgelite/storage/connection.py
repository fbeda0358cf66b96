"""Opening SQLite connections: one function per setting, each with its reason.

Three roles:

* ``WRITER`` — the one read-write connection of a database, owned by its writer
  thread. Runs client SQL under the WRITE authorizer, in defensive mode, and vetoes
  any commit edgelite did not authorize (the commit hook), so no transaction can ever
  commit locally without going through the commit step.
* ``READER`` — read-only connections for the read pool, READ authorizer.
* ``APPLIER`` — trusted connection that applies replicated effects: triggers and
  foreign keys off (their effects are already in the changeset) and defensive mode
  off (FTS5 shadow tables must be writable to apply their rows).
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

import apsw

from edgelite.storage import authorizer as authz


class Role(enum.Enum):
    WRITER = "writer"
    READER = "reader"
    APPLIER = "applier"


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """SQLite run-time limits applied to client-facing connections."""

    sql_bytes_max: int = 1024 * 1024
    value_bytes_max: int = 4 * 1024 * 1024
    parameters_per_statement_max: int = 32766
    cache_pages: int = 2000


@dataclasses.dataclass(frozen=True, slots=True)
class OpenedConnection:
    connection: apsw.Connection
    role: Role
    authorizer: authz.Authorizer | None


def open_connection(path: Path | str, role: Role, limits: ConnectionLimits,
                    *, synchronous_full: bool = True) -> OpenedConnection:
    flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    if role is Role.READER:
        flags = apsw.SQLITE_OPEN_READONLY
    connection = apsw.Connection(str(path), flags=flags, statementcachesize=256)
    _set_busy_timeout(connection)
    if role is not Role.READER:
        _use_wal(connection)
        _set_synchronous(connection, synchronous_full)
    _set_cache(connection, limits)
    _limit_attachments(connection)
    _distrust_schema(connection)
    if role is Role.APPLIER:
        _disable_triggers(connection)
        _set_foreign_keys(connection, enabled=False)
        return OpenedConnection(connection, role, None)
    _set_defensive(connection)
    _apply_limits(connection, limits)
    mode = authz.Mode.WRITE if role is Role.WRITER else authz.Mode.READ
    if role is Role.READER:
        _set_query_only(connection)
    return OpenedConnection(connection, role, authz.install(connection, mode))


def _set_busy_timeout(connection: apsw.Connection) -> None:
    # Checkpoints and a reader opening while the writer resets the WAL may briefly
    # contend on locks; wait rather than fail.
    connection.set_busy_timeout(5000)


def _use_wal(connection: apsw.Connection) -> None:
    # Readers never block the writer and never see uncommitted data (ARCHITECTURE §2).
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()
    if mode is None or str(mode[0]).lower() != "wal":
        raise apsw.CantOpenError(f"could not switch to WAL mode (got {mode!r})")


def _set_synchronous(connection: apsw.Connection, full: bool) -> None:
    # FULL: a commit is on disk when COMMIT returns (the single-node commit step).
    # NORMAL is enough when a durable Raft log precedes the commit.
    connection.execute("PRAGMA synchronous=" + ("FULL" if full else "NORMAL"))


def _set_cache(connection: apsw.Connection, limits: ConnectionLimits) -> None:
    connection.execute(f"PRAGMA cache_size={int(limits.cache_pages)}")


def _limit_attachments(connection: apsw.Connection) -> None:
    # No ATTACH ever, whatever the authorizer says: it creates files.
    connection.limit(apsw.SQLITE_LIMIT_ATTACHED, 0)


def _distrust_schema(connection: apsw.Connection) -> None:
    # Functions with side effects may not run from inside schema objects (views,
    # triggers, defaults) that a client could have written.
    connection.execute("PRAGMA trusted_schema=OFF")


def _disable_triggers(connection: apsw.Connection) -> None:
    connection.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 0)


def _set_foreign_keys(connection: apsw.Connection, *, enabled: bool) -> None:
    connection.execute("PRAGMA foreign_keys=" + ("ON" if enabled else "OFF"))


def _set_defensive(connection: apsw.Connection) -> None:
    # Blocks writable_schema tricks, shadow-table writes and other ways to corrupt
    # the file from SQL.
    connection.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)
    connection.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)


def _apply_limits(connection: apsw.Connection, limits: ConnectionLimits) -> None:
    connection.limit(apsw.SQLITE_LIMIT_SQL_LENGTH, limits.sql_bytes_max)
    connection.limit(apsw.SQLITE_LIMIT_LENGTH, limits.value_bytes_max)
    connection.limit(apsw.SQLITE_LIMIT_VARIABLE_NUMBER, limits.parameters_per_statement_max)


def _set_query_only(connection: apsw.Connection) -> None:
    # Belt and braces on readers; the authorizer refuses `PRAGMA query_only=0`.
    connection.execute("PRAGMA query_only=1")
