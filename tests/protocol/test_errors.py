"""The error table: edgelite exceptions and SQLite result codes -> Hrana codes (§9)."""

from __future__ import annotations

import pytest

from edgelite.errors import (
    AuthenticationError,
    BlockedError,
    LimitExceededError,
    ProtocolError,
    SqlError,
    StreamExpiredError,
)
from edgelite.protocol.hrana.errors import (
    error_to_hrana,
    hrana_code_for_sqlite,
    hrana_code_of,
    v1_http_status_for_code,
)
from edgelite.protocol.hrana.messages import Error


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1, "SQLITE_UNKNOWN"),
        (5, "SQLITE_BUSY"),
        (6, "SQLITE_LOCKED"),
        (8, "SQLITE_READONLY"),
        (9, "SQLITE_INTERRUPT"),
        (13, "SQLITE_FULL"),
        (19, "SQLITE_CONSTRAINT"),
        (2067, "SQLITE_CONSTRAINT"),  # SQLITE_CONSTRAINT_UNIQUE
        (1555, "SQLITE_CONSTRAINT"),  # SQLITE_CONSTRAINT_PRIMARYKEY
        (517, "SQLITE_BUSY"),  # SQLITE_BUSY_SNAPSHOT
        (266, "SQLITE_IOERR"),  # SQLITE_IOERR_READ
        (20, "SQLITE_MISMATCH"),
        (23, "SQLITE_AUTH"),
        (25, "SQLITE_RANGE"),
        (26, "SQLITE_NOTADB"),
        (16, "SQLITE_UNKNOWN"),  # SQLITE_EMPTY: unnamed by sqld
        (24, "SQLITE_UNKNOWN"),  # SQLITE_FORMAT
        (99, "SQLITE_UNKNOWN"),
    ],
)
def test_sqlite_codes(code: int, name: str) -> None:
    assert hrana_code_for_sqlite(code) == name


def test_sql_error_code_comes_from_sqlite_unless_given_explicitly() -> None:
    unique = SqlError("UNIQUE constraint failed: t.id", sqlite_code=19, extended_code=2067)
    assert error_to_hrana(unique) == Error("UNIQUE constraint failed: t.id", "SQLITE_CONSTRAINT")
    generic = SqlError("no such table: main.a1", sqlite_code=1)
    assert hrana_code_of(generic) == "SQLITE_UNKNOWN"
    prepare = SqlError("no such table: x (at offset 14)", code="SQL_INPUT_ERROR", sqlite_code=1)
    assert hrana_code_of(prepare) == "SQL_INPUT_ERROR"
    assert hrana_code_of(SqlError("no code at all")) == "SQLITE_UNKNOWN"


def test_other_errors_use_their_class_or_explicit_code() -> None:
    assert hrana_code_of(StreamExpiredError("expired")) == "STREAM_EXPIRED"
    assert hrana_code_of(BlockedError("blocked")) == "BLOCKED"
    assert hrana_code_of(AuthenticationError("bad", code="AUTH_JWT_INVALID")) == "AUTH_JWT_INVALID"
    too_many = LimitExceededError("too many", limit="stored_sql_max", code="SQL_STORE_TOO_MANY")
    assert error_to_hrana(too_many) == Error("too many", "SQL_STORE_TOO_MANY")
    assert error_to_hrana(ProtocolError("x")).code == "PROTOCOL_ERROR"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("SQL_PARSE_ERROR", 400),
        ("SQL_INPUT_ERROR", 400),
        ("ARGS_INVALID", 400),
        ("ARGS_BOTH_POSITIONAL_AND_NAMED", 501),
        ("TRANSACTION_TIMEOUT", 503),
        ("TRANSACTION_BUSY", 503),
        ("SQLITE_CONSTRAINT", 500),
        ("SQLITE_UNKNOWN", 500),
    ],
)
def test_v1_statuses(code: str, status: int) -> None:
    assert v1_http_status_for_code(code) == status
