"""Randomized mixed workloads: whatever runs on the leader, the replica ends equal.

Hypothesis generates batches of statements over a fixed schema (rowid, no-PK, WITHOUT
ROWID, AUTOINCREMENT, FK cascade, trigger, FTS5 tables) plus DDL (ADD COLUMN, CTAS,
CREATE INDEX, DROP TABLE), and runs each batch in one of several shapes: autocommit
statement by statement, BEGIN … COMMIT, BEGIN … ROLLBACK, a savepoint rolled back
part-way, or as concurrent jobs that the writer groups. Statements may fail (constraint
violations are generated on purpose); the replica must still equal the leader.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgelite.errors import SqlError
from edgelite.storage.context import SqlContext
from edgelite.storage.database import DatabaseConfig

from .conftest import Node, Waiter

SCHEMA = """
CREATE TABLE r (id INTEGER PRIMARY KEY, a, b DEFAULT (random()));
CREATE TABLE n (a, b);
CREATE TABLE w (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE s (id INTEGER PRIMARY KEY AUTOINCREMENT, v, at DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE p (id INTEGER PRIMARY KEY);
CREATE TABLE c (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p(id) ON DELETE CASCADE);
CREATE TABLE lg (id INTEGER PRIMARY KEY AUTOINCREMENT, what, r DEFAULT (randomblob(2)));
CREATE TRIGGER r_ai AFTER INSERT ON r BEGIN INSERT INTO lg(what) VALUES (new.id); END;
CREATE VIRTUAL TABLE f USING fts5(t, tokenize='porter');
"""

values = st.one_of(st.none(), st.integers(-5, 50), st.text("abc xyz", max_size=6),
                   st.binary(max_size=4), st.floats(-10, 10, allow_nan=False))
small = st.integers(0, 12)
words = st.lists(st.sampled_from(["edge", "edges", "run", "running", "sql", "lite"]),
                 min_size=1, max_size=4).map(" ".join)

Statement = tuple[str, tuple[object, ...]]

DML: list[st.SearchStrategy[Statement]] = [
    st.tuples(st.just("INSERT INTO r(a) VALUES (?)"), st.tuples(values)),
    st.tuples(st.just("INSERT INTO r(id, a) VALUES (?, ?)"), st.tuples(small, values)),
    st.tuples(st.just("INSERT OR REPLACE INTO r(id, a, b) VALUES (?, ?, random())"),
              st.tuples(small, values)),
    st.tuples(st.just("UPDATE r SET a = ?, b = randomblob(3) WHERE id % 3 = ?"),
              st.tuples(values, st.integers(0, 2))),
    st.tuples(st.just("DELETE FROM r WHERE id = ?"), st.tuples(small)),
    st.tuples(st.just("INSERT INTO n VALUES (?, ?)"), st.tuples(values, values)),
    st.tuples(st.just("DELETE FROM n WHERE rowid = (SELECT min(rowid) FROM n)"), st.just(())),
    st.tuples(st.just("UPDATE n SET b = ? WHERE rowid % 2 = 0"), st.tuples(values)),
    st.tuples(st.just("INSERT INTO w VALUES (?, ?)"), st.tuples(st.text("kq", max_size=2),
                                                                values)),
    st.tuples(st.just("INSERT INTO w VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET "
                      "v = json_array(v, excluded.v)"),
              st.tuples(st.text("kq", max_size=2), st.integers(0, 9))),
    st.tuples(st.just("INSERT INTO s(v) VALUES (?)"), st.tuples(values)),
    st.tuples(st.just("DELETE FROM s WHERE id = (SELECT max(id) FROM s)"), st.just(())),
    st.tuples(st.just("DELETE FROM sqlite_sequence WHERE name = 's'"), st.just(())),
    st.tuples(st.just("INSERT INTO p VALUES (?)"), st.tuples(small)),
    st.tuples(st.just("INSERT INTO c(pid) VALUES (?)"), st.tuples(small)),
    st.tuples(st.just("DELETE FROM p WHERE id = ?"), st.tuples(small)),
    st.tuples(st.just("INSERT INTO f(t) VALUES (?)"), st.tuples(words)),
    st.tuples(st.just("DELETE FROM f WHERE rowid = ?"), st.tuples(small)),
    st.tuples(st.just("UPDATE f SET t = ? WHERE rowid = ?"), st.tuples(words, small)),
]
DDL: list[st.SearchStrategy[Statement]] = [
    st.tuples(small.map(lambda i: f"ALTER TABLE n ADD COLUMN x{i} DEFAULT {i}"), st.just(())),
    st.tuples(small.map(lambda i: f"CREATE TABLE IF NOT EXISTS t{i} AS "
                                  "SELECT id, a, random() AS z FROM r"), st.just(())),
    st.tuples(small.map(lambda i: f"DROP TABLE IF EXISTS t{i}"), st.just(())),
    st.tuples(small.map(lambda i: f"CREATE INDEX IF NOT EXISTS i{i} ON n(a)"), st.just(())),
    st.tuples(st.just("DROP TABLE IF EXISTS p"), st.just(())),
]
statement = st.one_of(*DML, *DML, *DDL)
SHAPES = ["autocommit", "commit", "rollback", "savepoint", "grouped", "interleaved"]
# `EDGELITE_RANDOM_EXAMPLES=2000 pytest tests/storage/test_replication_random.py` for a
# longer search.
EXAMPLES = int(os.environ.get("EDGELITE_RANDOM_EXAMPLES", "25"))
batch = st.tuples(st.sampled_from(SHAPES), st.booleans(),
                  st.lists(statement, min_size=1, max_size=8))


def _try(ctx: SqlContext, sql: str, args: tuple[object, ...]) -> None:
    # Failures are part of the workload; only the failing statement is undone.
    with contextlib.suppress(SqlError):
        ctx.execute(sql, args)  # type: ignore[arg-type]


def _run_batch(node: Node, shape: str, foreign_keys: bool,
               statements: list[Statement]) -> None:
    session = node.session()
    if foreign_keys:
        node.execute(session, "PRAGMA foreign_keys=ON")
    if shape == "autocommit":
        for sql, args in statements:
            node.run(session, lambda ctx, sql=sql, args=args: _try(ctx, sql, args))
    elif shape == "grouped":
        _check_outcomes(_submit_each(node, statements, foreign_keys))
    elif shape == "interleaved":
        # An interactive transaction (one submit per statement) owns the writer while
        # other sessions' autocommit writes queue behind it and then run grouped.
        half = len(statements) // 2
        node.execute(session, "BEGIN")
        waiters = _submit_each(node, statements[half:], foreign_keys)
        for sql, args in statements[:half]:
            node.run(session, lambda ctx, sql=sql, args=args: _try(ctx, sql, args))
        node.execute(session, "COMMIT")
        _check_outcomes(waiters)
    else:
        _run_transaction(node, session, shape, statements)


def _submit_each(node: Node, statements: list[Statement], foreign_keys: bool
                 ) -> list[Waiter]:
    waiters: list[Waiter] = []
    for sql, args in statements:
        other = node.session()
        if foreign_keys:
            node.execute(other, "PRAGMA foreign_keys=ON")
        waiters.append(node.submit(
            other, lambda ctx, sql=sql, args=args: ctx.execute(sql, args),
            prefer_reader=False))
    return waiters


def _check_outcomes(waiters: list[Waiter]) -> None:
    for waiter in waiters:
        outcome = waiter.wait()
        assert outcome.error is None or isinstance(outcome.error, SqlError), outcome


def _run_transaction(node: Node, session: object, shape: str,
                     statements: list[Statement]) -> None:
    has_ddl = any(not sql.startswith(("INSERT", "UPDATE", "DELETE")) for sql, _ in statements)

    def program(ctx: SqlContext) -> None:
        ctx.execute("BEGIN")
        half = len(statements) // 2
        for position, (sql, args) in enumerate(statements):
            if shape == "savepoint" and position == half:
                ctx.execute("SAVEPOINT part")
            _try(ctx, sql, args)
        if shape == "savepoint":
            if len(statements) > 1:
                try:
                    ctx.execute("ROLLBACK TO part")
                except SqlError as exc:  # only refused across a schema change
                    assert has_ddl, exc
            ctx.execute("COMMIT")
        else:
            ctx.execute("COMMIT" if shape == "commit" else "ROLLBACK")
        assert ctx.is_autocommit

    outcome = node.run(session, program)  # type: ignore[arg-type]
    assert outcome.error is None, outcome.error


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(batch, min_size=1, max_size=6))
def test_random_workloads_replicate_exactly(batches: list[tuple[str, bool, list[Statement]]]
                                            ) -> None:
    with tempfile.TemporaryDirectory() as directory:
        node = Node(Path(directory), DatabaseConfig(read_connections=1))
        try:
            node.script(node.session(), SCHEMA)
            for shape, foreign_keys, statements in batches:
                _run_batch(node, shape, foreign_keys, statements)
            node.assert_replica_matches()
        finally:
            node.close()
