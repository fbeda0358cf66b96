"""The one table from edgelite errors and SQLite result codes to Hrana error codes.

Hrana clients only propagate ``Error.code``, but user code branches on it
(``e.code == "SQLITE_CONSTRAINT"``), so the codes match sqld's (protocol.md §9):
step-time SQLite failures are named after their *primary* result code, with sqld's one
twist that the generic ``SQLITE_ERROR`` (1) is ``SQLITE_UNKNOWN``; so are the codes
sqld does not name (``SQLITE_EMPTY``, ``SQLITE_FORMAT``, ``SQLITE_NOTICE``,
``SQLITE_WARNING``, anything unknown).

Lower layers (``storage/``) raise ``SqlError`` with SQLite's numeric codes and no Hrana
code; this module derives the code then. An explicit ``code=`` given when the error was
raised (``SQL_INPUT_ERROR``, ``ARGS_INVALID``, ``SQL_STORE_TOO_MANY``...) always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from edgelite.errors import EdgeliteError, SqlError
from edgelite.protocol.hrana.messages import Error

__all__ = [
    "SQLITE_CODE_NAMES",
    "error_to_hrana",
    "hrana_code_for_sqlite",
    "hrana_code_of",
    "v1_http_status_for_code",
]

SQLITE_CODE_NAMES: Final[Mapping[int, str]] = {
    1: "SQLITE_UNKNOWN",  # SQLITE_ERROR: sqld (via rusqlite's ErrorCode::Unknown) says UNKNOWN
    2: "SQLITE_INTERNAL",
    3: "SQLITE_PERM",
    4: "SQLITE_ABORT",
    5: "SQLITE_BUSY",
    6: "SQLITE_LOCKED",
    7: "SQLITE_NOMEM",
    8: "SQLITE_READONLY",
    9: "SQLITE_INTERRUPT",
    10: "SQLITE_IOERR",
    11: "SQLITE_CORRUPT",
    12: "SQLITE_NOTFOUND",
    13: "SQLITE_FULL",
    14: "SQLITE_CANTOPEN",
    15: "SQLITE_PROTOCOL",
    17: "SQLITE_SCHEMA",
    18: "SQLITE_TOOBIG",
    19: "SQLITE_CONSTRAINT",
    20: "SQLITE_MISMATCH",
    21: "SQLITE_MISUSE",
    22: "SQLITE_NOLFS",
    23: "SQLITE_AUTH",
    25: "SQLITE_RANGE",
    26: "SQLITE_NOTADB",
}

_UNKNOWN: Final = "SQLITE_UNKNOWN"

# /v1/execute answers a statement error with an HTTP status chosen by code (sqld's
# hrana_over_http_1.rs); SQLITE_* and anything else is 500.
_V1_STATUS_BY_CODE: Final[Mapping[str, int]] = {
    "SQL_PARSE_ERROR": 400,
    "SQL_NO_STATEMENT": 400,
    "SQL_MANY_STATEMENTS": 400,
    "ARGS_INVALID": 400,
    "SQL_INPUT_ERROR": 400,
    "PROXY_ERROR": 400,
    "RESPONSE_TOO_LARGE": 400,
    "BLOCKED": 400,
    "ARGS_BOTH_POSITIONAL_AND_NAMED": 501,
    "TRANSACTION_TIMEOUT": 503,
    "TRANSACTION_BUSY": 503,
}


def hrana_code_for_sqlite(result_code: int) -> str:
    """Hrana code for a SQLite result code (primary or extended, e.g. 2067 -> CONSTRAINT)."""
    return SQLITE_CODE_NAMES.get(result_code & 0xFF, _UNKNOWN)


def hrana_code_of(exc: EdgeliteError) -> str:
    """The code a client sees for ``exc``: explicit code, else SQLite's, else the class's."""
    explicit = vars(exc).get("code")
    if isinstance(explicit, str):
        return explicit
    if isinstance(exc, SqlError):
        sqlite_code = exc.extended_code if exc.extended_code is not None else exc.sqlite_code
        if sqlite_code is not None:
            return hrana_code_for_sqlite(sqlite_code)
    return type(exc).code


def error_to_hrana(exc: EdgeliteError) -> Error:
    """The Hrana ``Error`` sent for ``exc`` (always with a code: the Rust client needs it)."""
    return Error(message=exc.message, code=hrana_code_of(exc))


def v1_http_status_for_code(code: str) -> int:
    """HTTP status of a ``/v1/execute`` statement error with this Hrana code."""
    return _V1_STATUS_BY_CODE.get(code, 500)
