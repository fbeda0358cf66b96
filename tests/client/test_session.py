"""Unit tests of the sans-IO session: which pipelines an operation sends, how replies
and wire failures change its state, and what is retried. No I/O: the operations are
driven by hand with scripted replies."""

from __future__ import annotations

from typing import Any

import pytest

import edgelite
from edgelite.client.exchange import Executed, Flow, Pipeline, Reply, Sleep, WireError
from edgelite.client.session import ClientSession
from edgelite.protocol.hrana import messages as m

STREAM = "baton-1"


def ok_stmt(**fields: Any) -> m.StreamResultOk:
    return m.StreamResultOk(m.ExecuteResponse(m.StmtResult(cols=[], rows=[], **fields)))


def ok_batch(*results: m.StmtResult | None, errors: list[m.Error | None] | None = None,
             ) -> m.StreamResultOk:
    return m.StreamResultOk(m.BatchResponse(m.BatchResult(
        list(results), errors or [None] * len(results))))


def stmt_result(**fields: Any) -> m.StmtResult:
    return m.StmtResult(cols=[], rows=[], **fields)


def autocommit(value: bool) -> m.StreamResultOk:
    return m.StreamResultOk(m.GetAutocommitResponse(value))


CLOSED = m.StreamResultOk(m.CloseResponse())


class Driver:
    """Runs a flow, answering each pipeline with the next scripted reply (or error)."""

    def __init__(self, *answers: Reply | WireError) -> None:
        self.answers = list(answers)
        self.sent: list[Pipeline] = []
        self.slept: list[float] = []

    def run(self, flow: Flow[Any]) -> Any:
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    self.slept.append(step.seconds)
                    step = flow.send(None)
                    continue
                self.sent.append(step)
                answer = self.answers.pop(0)
                step = flow.throw(answer) if isinstance(answer, WireError) else flow.send(answer)
        except StopIteration as stop:
            return stop.value


def kinds(pipeline: Pipeline) -> list[str]:
    return [m.type_tag(r) for r in pipeline.requests]


def test_autocommit_select_is_one_execute_and_close() -> None:
    session = ClientSession()
    driver = Driver(Reply([ok_stmt(), CLOSED], None, 7))
    driver.run(session.execute("SELECT 1"))
    assert [kinds(p) for p in driver.sent] == [["execute", "close"]]
    assert driver.sent[0].stream is None
    assert session.replication_index == 7 and not session.has_stream


def test_dml_in_legacy_mode_folds_begin_into_a_batch_and_keeps_the_stream() -> None:
    session = ClientSession()
    driver = Driver(Reply([ok_batch(stmt_result(), stmt_result(affected_row_count=1,
                                                                last_insert_rowid=5)),
                           autocommit(False)], STREAM, None))
    outcome = driver.run(session.execute("INSERT INTO t VALUES (1)"))
    batch = driver.sent[0].requests[0]
    assert isinstance(batch, m.BatchRequest)
    assert [s.stmt.sql for s in batch.batch.steps] == ["BEGIN", "INSERT INTO t VALUES (1)"]
    assert batch.batch.steps[1].condition == m.CondOk(0)
    assert kinds(driver.sent[0]) == ["batch", "get_autocommit"]
    assert session.in_transaction and session.has_stream
    assert (outcome.rowcount, outcome.lastrowid) == (1, 5)


def test_statements_inside_a_transaction_reuse_the_stream_and_commit_closes_it() -> None:
    session = ClientSession(isolation_level="IMMEDIATE")
    driver = Driver(Reply([ok_batch(stmt_result(), stmt_result()), autocommit(False)],
                          STREAM, None),
                    Reply([ok_stmt(), autocommit(False)], "baton-2", None),
                    Reply([ok_stmt(), CLOSED], None, None))
    driver.run(session.execute("UPDATE t SET v = 1"))
    driver.run(session.execute("SELECT v FROM t"))
    driver.run(session.commit())
    begin = driver.sent[0].requests[0].batch.steps[0].stmt.sql  # type: ignore[union-attr]
    assert begin == "BEGIN IMMEDIATE"
    assert [p.stream for p in driver.sent] == [None, STREAM, "baton-2"]
    assert kinds(driver.sent[2]) == ["execute", "close"]
    assert not session.in_transaction and not session.has_stream


def test_failed_commit_says_the_transaction_was_rolled_back() -> None:
    session = ClientSession()
    driver = Driver(Reply([ok_batch(stmt_result(), stmt_result()), autocommit(False)],
                          STREAM, None),
                    Reply([m.StreamResultError(m.Error("SQLite error: database is locked",
                                                       "SQLITE_BUSY")), CLOSED], None, None))
    driver.run(session.execute("DELETE FROM t"))
    with pytest.raises(edgelite.OperationalError, match="rolled back"):
        driver.run(session.commit())
    assert not session.in_transaction


def test_connection_refused_is_retried_with_back_off_when_no_stream_is_open() -> None:
    session = ClientSession(retry_delays_s=(0.1, 0.2))
    refused = WireError("refused", code="CONNECT_ERROR", executed=Executed.NO, retryable=True)
    driver = Driver(refused, refused, Reply([ok_stmt(), CLOSED], None, None))
    driver.run(session.execute("SELECT 1"))
    assert driver.slept == [0.1, 0.2]
    assert len(driver.sent) == 3 and all(p == driver.sent[0] for p in driver.sent)


def test_retries_are_bounded() -> None:
    session = ClientSession(retry_delays_s=(0.1,))
    refused = WireError("refused", code="CONNECT_ERROR", executed=Executed.NO, retryable=True)
    driver = Driver(refused, refused)
    with pytest.raises(edgelite.OperationalError, match="refused"):
        driver.run(session.execute("SELECT 1"))


def test_nothing_that_may_have_run_is_retried() -> None:
    session = ClientSession()
    lost = WireError("connection reset", code="CONNECTION_LOST", executed=Executed.MAYBE)
    driver = Driver(lost)
    with pytest.raises(edgelite.OperationalError, match="may or may not have been applied"):
        driver.run(session.execute("INSERT INTO t VALUES (1)"))
    assert driver.slept == [] and len(driver.sent) == 1


def test_losing_the_stream_inside_a_transaction_is_reported_and_not_retried() -> None:
    session = ClientSession()
    refused = WireError("refused", code="CONNECT_ERROR", executed=Executed.NO, retryable=True)
    driver = Driver(Reply([ok_batch(stmt_result(), stmt_result()), autocommit(False)],
                          STREAM, None), refused)
    driver.run(session.execute("INSERT INTO t VALUES (1)"))
    with pytest.raises(edgelite.OperationalError, match="transaction was lost"):
        driver.run(session.execute("INSERT INTO t VALUES (2)"))
    assert driver.slept == []
    assert not session.in_transaction and not session.has_stream
    recovered = Driver(Reply([ok_stmt(), CLOSED], None, None))
    recovered.run(session.execute("SELECT 1"))
    assert recovered.sent[0].stream is None


def test_expired_stream_on_rollback_is_not_an_error() -> None:
    session = ClientSession()
    expired = WireError("expired", code="STREAM_EXPIRED", executed=Executed.NO)
    driver = Driver(Reply([ok_batch(stmt_result(), stmt_result()), autocommit(False)],
                          STREAM, None), expired)
    driver.run(session.execute("INSERT INTO t VALUES (1)"))
    driver.run(session.rollback())
    assert not session.in_transaction


def test_executemany_is_one_batch_with_stored_sql_and_a_chain_of_conditions() -> None:
    session = ClientSession(autocommit=True)
    results = [stmt_result(affected_row_count=1, last_insert_rowid=i) for i in (1, 2, 3)]
    driver = Driver(Reply([m.StreamResultOk(m.StoreSqlResponse()), ok_batch(*results),
                           m.StreamResultOk(m.CloseSqlResponse()), CLOSED], None, None))
    outcome = driver.run(session.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)]))
    assert kinds(driver.sent[0]) == ["store_sql", "batch", "close_sql", "close"]
    steps = driver.sent[0].requests[1].batch.steps  # type: ignore[union-attr]
    assert [s.condition for s in steps] == [None, m.CondOk(0), m.CondOk(1)]
    assert all(s.stmt.sql_id == 0 and s.stmt.sql is None for s in steps)
    assert outcome.rowcount == 3 and session.last_insert_rowid == 3


def test_executemany_splits_large_inputs_into_several_requests() -> None:
    session = ClientSession(autocommit=True, batch_steps_max=3)
    answers = []
    for size in (2, 2, 1):
        steps = [stmt_result(affected_row_count=1)] * size
        if size > 1:
            answers.append(Reply([m.StreamResultOk(m.StoreSqlResponse()), ok_batch(*steps),
                                  m.StreamResultOk(m.CloseSqlResponse()), CLOSED], None, None))
        else:
            answers.append(Reply([ok_batch(*steps), CLOSED], None, None))
    driver = Driver(*answers)
    outcome = driver.run(session.executemany("DELETE FROM t WHERE v = ?", [(i,) for i in range(5)]))
    assert outcome.rowcount == 5 and len(driver.sent) == 3


def test_bookmark_follows_the_highest_index_for_session_consistency() -> None:
    session = ClientSession(consistency="session")
    driver = Driver(Reply([ok_stmt(replication_index=9), CLOSED], None, 4),
                    Reply([ok_stmt(), CLOSED], None, 3))
    driver.run(session.execute("SELECT 1"))
    driver.run(session.execute("SELECT 1"))
    assert [p.bookmark for p in driver.sent] == [None, 9]
    assert session.replication_index == 9
    eventual = ClientSession(consistency="eventual")
    driver = Driver(Reply([ok_stmt(), CLOSED], None, 4), Reply([ok_stmt(), CLOSED], None, 4))
    driver.run(eventual.execute("SELECT 1"))
    driver.run(eventual.execute("SELECT 1"))
    assert [p.bookmark for p in driver.sent] == [None, None]
    assert [p.consistency for p in driver.sent] == ["eventual", "eventual"]


def test_bind_errors_are_raised_before_anything_is_sent() -> None:
    session = ClientSession()
    driver = Driver()
    with pytest.raises(edgelite.ProgrammingError):
        driver.run(session.execute("SELECT ?", ({1},)))
    assert driver.sent == []


def test_hrana2_without_probe_infers_the_transaction_from_begin() -> None:
    session = ClientSession(autocommit_probe=False)
    driver = Driver(Reply([ok_batch(stmt_result(), stmt_result())], STREAM, None),
                    Reply([ok_stmt(), CLOSED], None, None))
    driver.run(session.execute("INSERT INTO t VALUES (1)"))
    assert kinds(driver.sent[0]) == ["batch"]
    assert session.in_transaction
    driver.run(session.commit())
    assert not session.in_transaction


def test_close_rolls_back_an_open_transaction_by_closing_its_stream() -> None:
    session = ClientSession()
    driver = Driver(Reply([ok_batch(stmt_result(), stmt_result()), autocommit(False)],
                          STREAM, None),
                    Reply([CLOSED], None, None))
    driver.run(session.execute("INSERT INTO t VALUES (1)"))
    driver.run(session.close())
    assert kinds(driver.sent[1]) == ["close"] and driver.sent[1].stream == STREAM
    assert session.closed and not session.in_transaction
    idle = ClientSession()
    quiet = Driver()
    quiet.run(idle.close())
    assert idle.closed and quiet.sent == []


def test_kept_stream_sends_no_close_and_is_reused() -> None:
    session = ClientSession(keep_idle_stream=True)
    driver = Driver(Reply([ok_stmt()], STREAM, None), Reply([ok_stmt()], STREAM, None))
    driver.run(session.execute("SELECT 1"))
    driver.run(session.execute("SELECT 2"))
    assert [kinds(p) for p in driver.sent] == [["execute"], ["execute"]]
    assert [p.stream for p in driver.sent] == [None, STREAM]
    assert session.has_stream and not session.in_transaction


def test_lost_idle_stream_is_replaced_outside_a_transaction() -> None:
    session = ClientSession(keep_idle_stream=True, retry_delays_s=(0.0,))
    lost = WireError("socket gone", code="STREAM_LOST", executed=Executed.NO, retryable=True)
    driver = Driver(Reply([ok_stmt()], STREAM, None), lost, Reply([ok_stmt()], "other", None))
    driver.run(session.execute("SELECT 1"))
    driver.run(session.execute("SELECT 2"))
    assert [p.stream for p in driver.sent] == [None, STREAM, None]


def test_failed_commit_on_a_kept_stream_leaves_the_transaction_open() -> None:
    session = ClientSession(keep_idle_stream=True)
    fk = m.Error("SQLite error: FOREIGN KEY constraint failed", "SQLITE_CONSTRAINT")
    driver = Driver(Reply([ok_batch(stmt_result(), stmt_result()), autocommit(False)],
                          STREAM, None),
                    Reply([m.StreamResultError(fk), autocommit(False)], STREAM, None),
                    Reply([ok_stmt(), autocommit(True)], STREAM, None))
    driver.run(session.execute("INSERT INTO c VALUES (1)"))
    with pytest.raises(edgelite.IntegrityError, match="still open"):
        driver.run(session.commit())
    assert session.in_transaction
    driver.run(session.commit())
    assert kinds(driver.sent[2]) == ["execute", "get_autocommit"]
    assert not session.in_transaction and session.has_stream
