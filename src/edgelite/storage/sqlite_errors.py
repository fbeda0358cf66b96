"""APSW exceptions become edgelite ``SqlError``s here, and only here.

Codes follow sqld (protocol.md §9): errors while *preparing* a statement are
``SQL_INPUT_ERROR`` ("SQL input error: <msg> (at offset N)"); errors while *running*
it are ``SQLITE_<PRIMARY NAME>`` ("SQLite error: <msg>"), with generic result code 1
(``SQLITE_ERROR``) reported as ``SQLITE_UNKNOWN``.
"""

from __future__ import annotations

from typing import Literal

import apsw

from edgelite.errors import SqlError

Phase = Literal["prepare", "step"]


def primary_code_name(code: int) -> str:
    """``19`` -> ``"SQLITE_CONSTRAINT"``; unknown codes -> ``"SQLITE_UNKNOWN"``."""
    if code == apsw.SQLITE_ERROR:
        return "SQLITE_UNKNOWN"
    name = apsw.mapping_result_codes.get(code & 0xFF)
    return str(name) if name else "SQLITE_UNKNOWN"


def sql_error_from_apsw(exc: BaseException, *, phase: Phase) -> SqlError:
    """Translate an APSW exception raised while preparing or stepping a statement."""
    message = _plain_message(exc)
    primary = getattr(exc, "result", None)
    extended = getattr(exc, "extendedresult", None)
    if isinstance(exc, apsw.ExecutionCompleteError | apsw.ThreadingViolationError):
        raise AssertionError(f"storage misuse: {exc}") from exc
    if phase == "prepare" and (primary in (None, apsw.SQLITE_ERROR)):
        offset = getattr(exc, "error_offset", -1)
        where = f" (at offset {offset})" if isinstance(offset, int) and offset >= 0 else ""
        return SqlError(f"SQL input error: {message}{where}", code="SQL_INPUT_ERROR",
                        sqlite_code=primary, extended_code=extended)
    if isinstance(exc, apsw.AuthError):
        return SqlError(f"SQLite error: {message}", code="SQLITE_AUTH",
                        sqlite_code=apsw.SQLITE_AUTH, extended_code=extended)
    if isinstance(exc, apsw.InterruptError):
        return SqlError("SQLite error: interrupted (the statement ran past its deadline)",
                        code="SQLITE_INTERRUPT", sqlite_code=apsw.SQLITE_INTERRUPT,
                        extended_code=extended)
    code = primary_code_name(primary) if isinstance(primary, int) else "SQLITE_UNKNOWN"
    return SqlError(f"SQLite error: {message}", code=code, sqlite_code=primary,
                    extended_code=extended)


def _plain_message(exc: BaseException) -> str:
    text = str(exc)
    # APSW prefixes messages with the class name ("ConstraintError: ..."); clients
    # expect SQLite's own text.
    prefix = type(exc).__name__ + ": "
    return text[len(prefix):] if text.startswith(prefix) else text
