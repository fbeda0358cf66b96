"""Bounds: query deadline, response budget, SQL/parameter/value sizes, queue overload.
Each bound gives a clear error and the database keeps serving afterwards."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from edgelite.errors import LimitExceededError, OverloadedError, SqlError
from edgelite.storage.connection import ConnectionLimits
from edgelite.storage.context import SqlContext
from edgelite.storage.database import DatabaseConfig
from edgelite.storage.executor import ResponseBudget

from .conftest import Node, Waiter, query_file

ENDLESS = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
           "SELECT count(*) FROM c")
ENDLESS_INSERT = ("INSERT INTO t(v) WITH RECURSIVE c(x) AS "
                  "(SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c")


def _limited(make_node: Callable[..., Node], **config: object) -> Node:
    node = make_node(DatabaseConfig(read_connections=1, **config))  # type: ignore[arg-type]
    node.execute(node.session(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    return node


def _still_serving(node: Node) -> None:
    session = node.session()
    node.execute(session, "INSERT INTO t(v) VALUES ('still serving')")
    assert node.rows(session, "SELECT count(*) FROM t WHERE v = 'still serving'") == [(1,)]
    node.assert_replica_matches()


def test_deadline_interrupts_an_endless_query(make_node: Callable[..., Node]) -> None:
    node = _limited(make_node, query_timeout_ms=100)
    for read_only, prefer_reader in ((True, True), (False, False)):
        session = node.session(read_only=read_only)
        with pytest.raises(SqlError) as caught:
            node.execute(session, ENDLESS, prefer_reader=prefer_reader)
        assert caught.value.code == "SQLITE_INTERRUPT"
        assert "deadline" in str(caught.value)
    _still_serving(node)


def test_deadline_interrupts_an_endless_write_alone(make_node: Callable[..., Node]) -> None:
    """In a group and in its own transaction only that statement fails. Inside BEGIN,
    SQLite rolls an interrupted write's whole transaction back, and so does edgelite."""
    node = _limited(make_node, query_timeout_ms=100)
    session = node.session()
    with pytest.raises(SqlError, match="interrupted"):
        node.execute(session, ENDLESS_INSERT)
    owner = node.session()
    node.execute(owner, "BEGIN")
    waiters = [node.submit(node.session(), program, prefer_reader=False) for program in (
        lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('before')"),
        lambda ctx: ctx.execute(ENDLESS_INSERT),
        lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('after')"))]
    node.execute(owner, "INSERT INTO t(v) VALUES ('owner')")
    with pytest.raises(SqlError) as caught:
        node.execute(owner, ENDLESS_INSERT)
    assert caught.value.code == "SQLITE_INTERRUPT"
    assert node.run(owner, lambda ctx: ctx.is_autocommit).value  # the transaction ended
    with pytest.raises(SqlError, match="no transaction is active"):
        node.execute(owner, "COMMIT")
    outcomes = [w.wait() for w in waiters]
    assert outcomes[0].error is None and outcomes[2].error is None
    assert isinstance(outcomes[1].error, SqlError)
    assert outcomes[1].error.code == "SQLITE_INTERRUPT"
    assert [v for (v,) in query_file(node.path, "SELECT v FROM t ORDER BY id")] == [
        "before", "after"]
    _still_serving(node)


def test_response_byte_budget_is_shared_by_a_request(node: Node) -> None:
    session = node.session()
    node.execute(session, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    node.execute(session, "INSERT INTO t(v) SELECT zeroblob(1000) FROM "
                          "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                          "WHERE x < 10) SELECT x FROM c)")
    budget = ResponseBudget(bytes_left=15_000, rows_per_statement_max=100)
    assert len(node.execute(session, "SELECT v FROM t", budget=budget).rows) == 10

    def twice(ctx: SqlContext) -> None:
        ctx.execute("SELECT v FROM t")
        ctx.execute("SELECT v FROM t")

    outcome = node.run(session, twice,
                       budget=ResponseBudget(bytes_left=15_000, rows_per_statement_max=100))
    error = outcome.error
    assert isinstance(error, LimitExceededError)
    assert error.code == "RESPONSE_TOO_LARGE" and error.limit == "response_bytes_max"
    # Rows that are not returned (want_rows=False) cost nothing.
    outcome = node.run(session, lambda ctx: [ctx.execute("SELECT v FROM t", want_rows=False)
                                             for _ in range(5)],
                       budget=ResponseBudget(bytes_left=100, rows_per_statement_max=100))
    assert outcome.error is None
    assert outcome.value[0].rows == [] and outcome.value[0].columns[0].name == "v"


@pytest.mark.parametrize("prefer_reader", [True, False])
def test_rows_cap(node: Node, prefer_reader: bool) -> None:
    session = node.session()
    budget = ResponseBudget(bytes_left=10**9, rows_per_statement_max=5)
    assert len(node.rows(session, "SELECT value FROM json_each('[1,2,3,4,5]')",
                         budget=budget, prefer_reader=prefer_reader)) == 5
    with pytest.raises(LimitExceededError) as caught:
        node.execute(session, "SELECT value FROM json_each('[1,2,3,4,5,6]')",
                     budget=budget, prefer_reader=prefer_reader)
    assert caught.value.code == "RESPONSE_TOO_LARGE"


def test_returning_over_the_cap_in_a_group_fails_alone(node: Node) -> None:
    """A statement abandoned half-way (RETURNING over the cap) is undone and does not
    block the rest of its group or later writes."""
    session = node.session()
    node.execute(session, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    owner = node.session()
    node.execute(owner, "BEGIN")
    budget = ResponseBudget(bytes_left=10**9, rows_per_statement_max=3)
    many = ("INSERT INTO t(v) SELECT value FROM json_each('[1,2,3,4,5,6,7,8]') "
            "RETURNING id")
    waiters = [
        node.submit(node.session(), lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('a')"),
                    prefer_reader=False),
        node.submit(node.session(), lambda ctx: ctx.execute(many), budget=budget,
                    prefer_reader=False),
        node.submit(node.session(), lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('b')"),
                    prefer_reader=False),
    ]
    node.execute(owner, "COMMIT")
    outcomes = [w.wait() for w in waiters]
    assert outcomes[0].error is None and outcomes[2].error is None
    assert isinstance(outcomes[1].error, LimitExceededError)
    assert query_file(node.path, "SELECT v FROM t ORDER BY id") == [("a",), ("b",)]
    node.execute(session, many, budget=ResponseBudget(10**9, 100))  # the writer is fine
    assert query_file(node.path, "SELECT count(*) FROM t") == [(10,)]
    node.assert_replica_matches()


def test_reader_is_healthy_after_an_abandoned_query(make_node: Callable[..., Node]) -> None:
    node = _limited(make_node)
    session = node.session(read_only=True)
    node.execute(node.session(), "INSERT INTO t(v) SELECT value FROM json_each('[1,2,3,4]')")
    with pytest.raises(LimitExceededError):
        node.execute(session, "SELECT * FROM t", budget=ResponseBudget(10**9, 2))
    node.execute(node.session(), "INSERT INTO t(v) VALUES (5)")
    assert node.rows(session, "SELECT count(*) FROM t") == [(5,)]


def test_sql_length_limit(make_node: Callable[..., Node]) -> None:
    node = _limited(make_node, limits=ConnectionLimits(sql_bytes_max=1000))
    session = node.session()
    ok = "SELECT 1" + " " * 900
    node.execute(session, ok)
    too_long = "SELECT 1" + " " * 1000
    for prefer_reader in (True, False):
        with pytest.raises(SqlError) as caught:
            node.execute(session, too_long, prefer_reader=prefer_reader)
        assert caught.value.code == "SQLITE_TOOBIG"
    with pytest.raises(SqlError):
        node.execute(session, "INSERT INTO t(v) VALUES ('" + "x" * 1000 + "')")
    _still_serving(node)


def test_parameter_count_limit(make_node: Callable[..., Node]) -> None:
    node = _limited(make_node, limits=ConnectionLimits(parameters_per_statement_max=10))
    session = node.session()
    assert node.rows(session, "SELECT " + ", ".join("?" * 10), tuple(range(10))) == [
        tuple(range(10))]
    for sql in ("SELECT " + ", ".join("?" * 11), "SELECT ?11"):
        with pytest.raises(SqlError) as caught:
            node.execute(session, sql, tuple(range(11)))
        assert caught.value.code == "SQL_INPUT_ERROR"
    _still_serving(node)


def test_value_size_limit(make_node: Callable[..., Node]) -> None:
    node = _limited(make_node, limits=ConnectionLimits(value_bytes_max=10_000))
    session = node.session()
    assert node.rows(session, "SELECT length(randomblob(10000))") == [(10_000,)]
    for sql, args in (("SELECT randomblob(1000000000)", ()),
                      ("SELECT randomblob(10001)", ()),
                      ("INSERT INTO t(v) VALUES (randomblob(20000))", ()),
                      ("INSERT INTO t(v) VALUES (?)", (b"x" * 20_000,)),
                      ("SELECT ? || ?", ("x" * 6000, "y" * 6000))):
        for prefer_reader in (True, False):
            with pytest.raises(SqlError) as caught:
                node.execute(session, sql, args, prefer_reader=prefer_reader)
            assert caught.value.code == "SQLITE_TOOBIG", sql
    assert query_file(node.path, "SELECT count(*) FROM t") == [(0,)]
    _still_serving(node)


def _block(node: Node, *, on_writer: bool) -> tuple[threading.Event, Waiter]:
    """Occupy the writer (or the only reader) with a program that waits."""
    started, release = threading.Event(), threading.Event()

    def program(ctx: SqlContext) -> None:
        if on_writer:
            ctx.execute("INSERT INTO t(v) VALUES ('blocker')")
        started.set()
        assert release.wait(20)

    waiter = node.submit(node.session(), program, prefer_reader=not on_writer)
    assert started.wait(10)
    return release, waiter


def test_write_queue_overload(make_node: Callable[..., Node]) -> None:
    node = _limited(make_node, write_queue_max=3)
    release, blocker = _block(node, on_writer=True)
    waiters = [node.submit(node.session(),
                           lambda ctx, i=i: ctx.execute("INSERT INTO t(v) VALUES (?)", (i,)),
                           prefer_reader=False) for i in range(3)]
    with pytest.raises(OverloadedError) as caught:
        node.submit(node.session(), lambda ctx: ctx.execute("INSERT INTO t(v) VALUES (9)"),
                    prefer_reader=False)
    assert caught.value.code == "OVERLOADED" and "write_queue_max" in str(caught.value)
    # A write that started on a reader and needs the writer gets the error as its outcome.
    escalated = node.submit(node.session(),
                            lambda ctx: ctx.execute("INSERT INTO t(v) VALUES ('escalated')"))
    assert isinstance(escalated.wait().error, OverloadedError)
    release.set()
    assert blocker.wait().error is None
    assert all(w.wait().error is None for w in waiters)
    assert query_file(node.path, "SELECT count(*) FROM t") == [(4,)]
    _still_serving(node)


def test_read_queue_overload(make_node: Callable[..., Node]) -> None:
    node = _limited(make_node, read_queue_max=2)
    release, blocker = _block(node, on_writer=False)
    session = node.session(read_only=True)
    waiters = [node.submit(session, lambda ctx: ctx.execute("SELECT 1")) for _ in range(2)]
    with pytest.raises(OverloadedError) as caught:
        node.submit(node.session(read_only=True), lambda ctx: ctx.execute("SELECT 1"))
    assert "read_queue_max" in str(caught.value)
    release.set()
    blocker.wait()
    assert all(w.wait().error is None for w in waiters)
    _still_serving(node)
