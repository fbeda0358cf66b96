"""PEP 249 exceptions, rooted in ``edgelite.errors.EdgeliteError``, and the one table that
turns a Hrana error code into one of them.

::

    EdgeliteError (edgelite.errors)
    └── Error
        ├── InterfaceError         misuse of the client, or a server that broke the protocol
        └── DatabaseError
            ├── DataError          a value cannot be stored or sent (too big, not finite)
            ├── OperationalError   SQL errors like "no such table", busy/locked, auth,
            │                      network failures, expired streams
            ├── IntegrityError     constraint violations
            ├── InternalError      the database reported an internal failure
            ├── ProgrammingError   wrong number/kind of parameters, closed objects, ...
            └── NotSupportedError  a sqlite3 feature a remote database cannot offer
    Warning (PEP 249 says: a subclass of Exception, not of Error)

The mapping follows CPython's ``_sqlite/util.c`` for SQLite result codes, so code written
for ``sqlite3`` catches the same class for the same failure. Every instance carries the
Hrana ``code`` (``"SQLITE_CONSTRAINT"``, ``"SQL_INPUT_ERROR"``, ...) and, like
``sqlite3`` since Python 3.11, ``sqlite_errorcode`` / ``sqlite_errorname`` when the
failure came from SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from edgelite.errors import EdgeliteError

__all__ = [
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Warning",
    "error_from_hrana",
    "plain_message",
]


class Warning(Exception):
    """Important warnings (PEP 249). Never raised by edgelite today."""


class Error(EdgeliteError, Exception):
    """Base of every PEP 249 error raised by the client.

    ``code`` is the Hrana error code (or a client-side code such as ``CLIENT_CLOSED``);
    ``sqlite_errorcode`` / ``sqlite_errorname`` are SQLite's primary result code and name
    when the failure came from SQLite, else ``None``.
    """

    code = "CLIENT_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        name = self.code if self.code.startswith("SQLITE_") else None
        if name == "SQLITE_UNKNOWN" or self.code in _PREPARE_CODES:
            name = "SQLITE_ERROR"  # what SQLite itself reports for these
        self.sqlite_errorname: str | None = name
        self.sqlite_errorcode: int | None = (
            _SQLITE_CODES.get(self.sqlite_errorname) if self.sqlite_errorname else None
        )


class InterfaceError(Error):
    code = "INTERFACE_ERROR"


class DatabaseError(Error):
    code = "DATABASE_ERROR"


class DataError(DatabaseError):
    code = "DATA_ERROR"


class OperationalError(DatabaseError):
    code = "OPERATIONAL_ERROR"


class IntegrityError(DatabaseError):
    code = "SQLITE_CONSTRAINT"


class InternalError(DatabaseError):
    code = "INTERNAL_ERROR"


class ProgrammingError(DatabaseError):
    code = "PROGRAMMING_ERROR"


class NotSupportedError(DatabaseError):
    code = "NOT_SUPPORTED"


# Hrana codes for statements SQLite refused to prepare (result code SQLITE_ERROR).
_PREPARE_CODES: Final = frozenset({"SQL_INPUT_ERROR", "SQL_PARSE_ERROR"})
# SQLite primary result codes by name (sqlite3.h).
_SQLITE_CODES: Final[Mapping[str, int]] = {
    "SQLITE_ERROR": 1, "SQLITE_INTERNAL": 2, "SQLITE_PERM": 3, "SQLITE_ABORT": 4,
    "SQLITE_BUSY": 5, "SQLITE_LOCKED": 6, "SQLITE_NOMEM": 7, "SQLITE_READONLY": 8,
    "SQLITE_INTERRUPT": 9, "SQLITE_IOERR": 10, "SQLITE_CORRUPT": 11,
    "SQLITE_NOTFOUND": 12, "SQLITE_FULL": 13, "SQLITE_CANTOPEN": 14,
    "SQLITE_PROTOCOL": 15, "SQLITE_EMPTY": 16, "SQLITE_SCHEMA": 17, "SQLITE_TOOBIG": 18,
    "SQLITE_CONSTRAINT": 19, "SQLITE_MISMATCH": 20, "SQLITE_MISUSE": 21,
    "SQLITE_NOLFS": 22, "SQLITE_AUTH": 23, "SQLITE_FORMAT": 24, "SQLITE_RANGE": 25,
    "SQLITE_NOTADB": 26,
}

# Hrana code -> class. SQLite codes follow CPython's _pysqlite_seterror; the rest are
# sqld's request-level codes (protocol.md §9) and edgelite's own.
_CLASS_BY_CODE: Final[Mapping[str, type[Error]]] = {
    "SQLITE_UNKNOWN": OperationalError,  # generic SQLITE_ERROR
    "SQLITE_ERROR": OperationalError,
    "SQLITE_INTERNAL": InternalError,
    "SQLITE_NOTFOUND": InternalError,
    "SQLITE_NOMEM": OperationalError,
    "SQLITE_PERM": OperationalError,
    "SQLITE_ABORT": OperationalError,
    "SQLITE_BUSY": OperationalError,
    "SQLITE_LOCKED": OperationalError,
    "SQLITE_READONLY": OperationalError,
    "SQLITE_INTERRUPT": OperationalError,
    "SQLITE_IOERR": OperationalError,
    "SQLITE_FULL": OperationalError,
    "SQLITE_CANTOPEN": OperationalError,
    "SQLITE_PROTOCOL": OperationalError,
    "SQLITE_EMPTY": OperationalError,
    "SQLITE_SCHEMA": OperationalError,
    "SQLITE_CORRUPT": DatabaseError,
    "SQLITE_TOOBIG": DataError,
    "SQLITE_CONSTRAINT": IntegrityError,
    "SQLITE_MISMATCH": IntegrityError,
    "SQLITE_MISUSE": InterfaceError,
    "SQLITE_RANGE": InterfaceError,
    # Request-level codes.
    "SQL_PARSE_ERROR": OperationalError,  # sqlite3: syntax errors are OperationalError
    "SQL_INPUT_ERROR": OperationalError,  # "no such table", syntax errors at prepare
    "SQL_MANY_STATEMENTS": ProgrammingError,
    "ARGS_INVALID": ProgrammingError,
    "ARGS_BOTH_POSITIONAL_AND_NAMED": ProgrammingError,
    "TRANSACTION_TIMEOUT": OperationalError,
    "TRANSACTION_BUSY": OperationalError,
    "BLOCKED": OperationalError,
    "RESPONSE_TOO_LARGE": OperationalError,
    "PROXY_ERROR": OperationalError,
    "STREAM_EXPIRED": OperationalError,
    "STREAM_NOT_OPEN": OperationalError,
    "CURSOR_NOT_OPEN": OperationalError,
    "SQL_STORE_TOO_MANY": InternalError,
    "SQL_STORE_TOO_LARGE": InternalError,
    "LIMIT_EXCEEDED": OperationalError,
    "OVERLOADED": OperationalError,
    "NOT_LEADER": OperationalError,
    "CLUSTER_UNAVAILABLE": OperationalError,
    "OUTCOME_UNKNOWN": OperationalError,
    "NAMESPACE_NOT_FOUND": OperationalError,
    "NAMESPACE_INVALID": OperationalError,
    "AUTH_PERMISSION_DENIED": OperationalError,
}

# Prefixes sqld puts before SQLite's own text; sqlite3 shows SQLite's text alone.
_MESSAGE_PREFIXES: Final = ("SQLite error: ", "SQL input error: ")


def plain_message(message: str) -> str:
    """``"SQLite error: UNIQUE constraint failed: t.id"`` -> ``"UNIQUE constraint ..."``."""
    for prefix in _MESSAGE_PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def error_from_hrana(code: str | None, message: str) -> Error:
    """The PEP 249 exception for a Hrana error ``code`` (``None`` = unknown)."""
    code = code or "SQLITE_UNKNOWN"
    cls = _CLASS_BY_CODE.get(code)
    if cls is None:
        if code.startswith("AUTH_"):
            cls = OperationalError
        elif code.startswith("SQLITE_"):
            cls = DatabaseError  # CPython's default for codes it does not list
        else:
            cls = OperationalError
    return cls(plain_message(message), code=code)
