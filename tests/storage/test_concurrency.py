"""Many clients at once: autocommit writes, interactive transactions (some stolen by a
short lock timeout, some abandoned by closing the session), savepoints and reads.

Every job is acknowledged exactly once, only expected errors occur, exactly the
writes that were reported committed are in the database, and the replica equals it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest

from edgelite.errors import SqlError, StorageError
from edgelite.storage.database import DatabaseConfig
from edgelite.storage.session import SqlSession

from .conftest import Node, query_file

EXPECTED_CODES = {"TRANSACTION_TIMEOUT", "SQLITE_CONSTRAINT"}


class Client:
    def __init__(self, node: Node, seed: int) -> None:
        self.node = node
        self.rng = random.Random(seed)
        self.seed = seed
        self.session = node.session()
        self.committed: set[str] = set()
        self.unexpected: list[BaseException] = []
        self.counter = 0

    def token(self) -> str:
        self.counter += 1
        return f"c{self.seed}-{self.counter}"

    def run(self, sql: str, args: tuple[object, ...] = ()) -> BaseException | None:
        outcome = self.node.run(self.session, lambda ctx: ctx.execute(sql, args),
                                prefer_reader=self.rng.random() < 0.5)
        error = outcome.error
        if error is not None and not (isinstance(error, SqlError)
                                      and error.code in EXPECTED_CODES):
            self.unexpected.append(error)
        return error

    def autocommit_insert(self) -> None:
        token = self.token()
        if self.run("INSERT INTO t(v) VALUES (?)", (token,)) is None:
            self.committed.add(token)

    def transaction(self) -> None:
        tokens = [self.token() for _ in range(self.rng.randint(1, 3))]
        failed = self.run("BEGIN") is not None
        if self.rng.random() < 0.3:
            failed |= self.run("SAVEPOINT sp") is not None
        for token in tokens:
            failed |= self.run("INSERT INTO t(v) VALUES (?)", (token,)) is not None
            if self.rng.random() < 0.2:
                threading.Event().wait(0.03)  # hold the lock a while: invites a steal
        ending = self.rng.choice(["COMMIT", "COMMIT", "ROLLBACK", "CLOSE"])
        if ending == "CLOSE":
            assert self.node.close_session(self.session).error is None
            self.session = self.node.session()
            return
        if failed:
            ending = "ROLLBACK"
        if self.run(ending) is None and ending == "COMMIT":
            self.committed.update(tokens)
        if not self.session.is_autocommit:
            assert self.run("ROLLBACK") is None

    def read(self) -> None:
        session = self.node.session(read_only=self.rng.random() < 0.5)
        outcome = self.node.run(session, lambda ctx: ctx.execute("SELECT count(*) FROM t"))
        if outcome.error is not None:
            self.unexpected.append(outcome.error)

    def read_transaction(self) -> None:
        """A read transaction sees one snapshot however much is written meanwhile."""
        session = self.node.session(read_only=True)
        counts = []
        for sql in ("BEGIN", "SELECT count(*) FROM t", "SELECT count(*) FROM t", "COMMIT"):
            outcome = self.node.run(session, lambda ctx, sql=sql: ctx.execute(sql).rows)
            if outcome.error is not None:
                self.unexpected.append(outcome.error)
                return
            if sql.startswith("SELECT"):
                counts.append(outcome.value)
                threading.Event().wait(0.01)
        if counts[0] != counts[1]:
            self.unexpected.append(AssertionError(f"snapshot moved: {counts}"))

    def work(self, steps: int) -> None:
        actions: list[Callable[[], None]] = [self.autocommit_insert, self.autocommit_insert,
                                             self.transaction, self.read,
                                             self.read_transaction]
        for _ in range(steps):
            self.rng.choice(actions)()


def test_many_clients_at_once(make_node: Callable[..., Node]) -> None:
    node = make_node(DatabaseConfig(read_connections=2, txn_timeout_s=0.02))
    node.execute(node.session(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v UNIQUE)")
    clients = [Client(node, seed) for seed in range(6)]
    threads = [threading.Thread(target=client.work, args=(30,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a client hung"
    for client in clients:
        assert not client.unexpected, (client.seed, client.unexpected)
    committed = set().union(*(client.committed for client in clients))
    stored = {v for (v,) in query_file(node.path, "SELECT v FROM t")}
    assert stored == committed
    assert node.db.writer.owner is None
    node.assert_replica_matches()


def test_closing_the_database_answers_every_queued_job(make_node: Callable[..., Node]
                                                       ) -> None:
    node = make_node(DatabaseConfig(read_connections=1, txn_timeout_s=0.2))
    node.execute(node.session(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    owner: SqlSession = node.session()
    node.execute(owner, "BEGIN")
    node.execute(owner, "INSERT INTO t(v) VALUES ('never committed')")
    waiters = [node.submit(node.session(),
                           lambda ctx, i=i: ctx.execute("INSERT INTO t(v) VALUES (?)", (i,)),
                           prefer_reader=False) for i in range(3)]
    node.db.close()
    # The queued writes still ran (the open transaction was stolen after its timeout);
    # each got exactly one answer; the abandoned transaction never committed.
    assert all(waiter.wait().error is None for waiter in waiters)
    assert all(waiter.acknowledgements == 1 for waiter in waiters)
    assert query_file(node.path, "SELECT v FROM t ORDER BY id") == [(0,), (1,), (2,)]
    with pytest.raises(StorageError, match="closing"):
        node.submit(node.session(), lambda ctx: ctx.execute("SELECT 1"), prefer_reader=False)
    with pytest.raises(StorageError, match="closing"):
        node.submit(node.session(read_only=True), lambda ctx: ctx.execute("SELECT 1"))
