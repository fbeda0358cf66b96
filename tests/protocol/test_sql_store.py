"""Stored SQL texts: limits, duplicate ids, resolving sql_id."""

from __future__ import annotations

import pytest

from edgelite.errors import LimitExceededError, ProtocolError
from edgelite.protocol.hrana.messages import Batch, BatchStep, CondOk, Stmt
from edgelite.protocol.hrana.sql_store import SqlStore


def test_store_close_and_resolve() -> None:
    store = SqlStore(count_max=2)
    store.store(0, "SELECT 1")
    assert store.resolve(None, 0) == "SELECT 1"
    assert store.resolve("SELECT 2", None) == "SELECT 2"
    store.close(0)
    store.close(0)  # closing an unknown id is fine
    with pytest.raises(ProtocolError, match="SQL text with id 0 was not found"):
        store.resolve(None, 0)


def test_duplicate_id_is_a_protocol_error() -> None:
    store = SqlStore(count_max=5)
    store.store(1, "a")
    with pytest.raises(ProtocolError, match="already stored"):
        store.store(1, "b")


def test_limits() -> None:
    store = SqlStore(count_max=2, text_bytes_max=5, total_bytes_max=8)
    store.store(0, "12345")
    with pytest.raises(LimitExceededError) as too_large:
        store.store(1, "123456")
    assert too_large.value.code == "SQL_STORE_TOO_LARGE"
    with pytest.raises(LimitExceededError) as total:
        store.store(1, "1234")
    assert total.value.code == "SQL_STORE_TOO_LARGE"
    store.store(1, "é")  # 2 bytes
    with pytest.raises(LimitExceededError) as too_many:
        store.store(2, "x")
    assert too_many.value.code == "SQL_STORE_TOO_MANY"
    store.close(0)
    assert store.total_bytes == 2
    store.store(2, "x")


def test_resolving_statements_and_batches() -> None:
    store = SqlStore(count_max=5)
    store.store(7, "INSERT INTO t VALUES (?)")
    inline = Stmt("SELECT 1")
    assert store.resolve_stmt(inline) is inline
    resolved = store.resolve_stmt(Stmt(sql_id=7, args=[1], want_rows=False))
    assert resolved == Stmt("INSERT INTO t VALUES (?)", args=[1], want_rows=False)
    batch = Batch([BatchStep(Stmt("BEGIN")), BatchStep(Stmt(sql_id=7), CondOk(0))])
    assert store.resolve_batch(batch) == Batch(
        [BatchStep(Stmt("BEGIN")), BatchStep(Stmt("INSERT INTO t VALUES (?)"), CondOk(0))]
    )
    plain = Batch([BatchStep(Stmt("BEGIN"))])
    assert store.resolve_batch(plain) is plain
