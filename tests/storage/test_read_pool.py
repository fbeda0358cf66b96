"""The read pool: a read transaction holds its connection; nobody else runs on it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edgelite.errors import OverloadedError, StorageError
from edgelite.storage.database import DatabaseConfig
from edgelite.storage.session import TxnState

from .conftest import Node


def _pool(make_node: Callable[..., Node], readers: int, **config: object) -> Node:
    node = make_node(DatabaseConfig(read_connections=readers, **config))  # type: ignore[arg-type]
    node.execute(node.session(), "CREATE TABLE t (x)")
    return node


def test_other_sessions_never_run_inside_a_read_transaction(make_node: Callable[..., Node]
                                                            ) -> None:
    node = _pool(make_node, readers=2)
    holder, writer = node.session(read_only=True), node.session()
    node.execute(holder, "BEGIN")
    assert node.rows(holder, "SELECT count(*) FROM t") == [(0,)]
    node.execute(writer, "INSERT INTO t VALUES (1)")  # starts on a reader, escalates
    for _ in range(6):  # round-robin would land on the held reader
        other = node.session(read_only=True)
        assert node.rows(other, "SELECT count(*) FROM t") == [(1,)]
        assert other.txn is TxnState.NONE and other.reader is None
        node.execute(other, "BEGIN")
        node.execute(other, "COMMIT")  # ends its own transaction, not the holder's
    assert node.rows(holder, "SELECT count(*) FROM t") == [(0,)]  # its snapshot
    assert holder.txn is TxnState.READ
    node.execute(holder, "COMMIT")
    assert node.rows(holder, "SELECT count(*) FROM t") == [(1,)]


def test_when_every_reader_is_held(make_node: Callable[..., Node]) -> None:
    """Read-write callers are served by the writer; read-only callers wait for a reader
    to be released."""
    node = _pool(make_node, readers=1)
    holder = node.session(read_only=True)
    node.execute(holder, "BEGIN")
    assert node.rows(holder, "SELECT count(*) FROM t") == [(0,)]
    node.execute(node.session(), "INSERT INTO t VALUES (1)")
    assert node.rows(node.session(), "SELECT count(*) FROM t") == [(1,)]  # on the writer
    waiting = node.submit(node.session(read_only=True),
                          lambda ctx: ctx.execute("SELECT count(*) FROM t").rows)
    assert not waiting.finished
    assert node.rows(holder, "SELECT count(*) FROM t") == [(0,)]
    node.execute(holder, "COMMIT")  # releases the reader; the parked read runs
    outcome = waiting.wait()
    assert outcome.error is None and outcome.value == [(1,)]


def test_parked_reads_are_bounded_and_answered_at_close(make_node: Callable[..., Node]
                                                        ) -> None:
    node = _pool(make_node, readers=1, read_queue_max=2)
    holder = node.session(read_only=True)
    node.execute(holder, "BEGIN")
    node.execute(holder, "SELECT * FROM t")
    parked = [node.submit(node.session(read_only=True), lambda ctx: ctx.execute("SELECT 1"))
              for _ in range(2)]
    with pytest.raises(OverloadedError, match="read transaction"):
        node.submit(node.session(read_only=True), lambda ctx: ctx.execute("SELECT 1"))
    node.db.close()
    for waiter in parked:
        assert isinstance(waiter.wait().error, StorageError)


def test_closing_the_holder_releases_the_reader(make_node: Callable[..., Node]) -> None:
    node = _pool(make_node, readers=1)
    holder = node.session(read_only=True)
    node.execute(holder, "BEGIN READONLY")
    node.execute(holder, "SELECT * FROM t")
    waiting = node.submit(node.session(read_only=True), lambda ctx: ctx.execute("SELECT 1"))
    assert node.close_session(holder).error is None
    assert waiting.wait().error is None
