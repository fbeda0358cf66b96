"""Harness for the storage tests: a real ``Database`` on a temporary file, a blocking way
to run programs on it, and a commit step that replays every committed effect onto a
second, empty database (the *replica*) the way a follower would.

``Node.assert_replica_matches()`` is the replication-determinism check: the replica
must hold exactly the leader's rows, ``sqlite_sequence``, schema and user_version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import apsw
import pytest

from edgelite.storage import effects
from edgelite.storage.connection import ConnectionLimits, Role, open_connection
from edgelite.storage.context import SqlContext
from edgelite.storage.database import Database, DatabaseConfig
from edgelite.storage.executor import ResponseBudget, StatementResult, Value
from edgelite.storage.session import JobOutcome, SqlSession

WAIT_S = 20.0
BIG_BUDGET_BYTES = 64 * 1024 * 1024
BIG_BUDGET_ROWS = 1_000_000


def big_budget() -> ResponseBudget:
    return ResponseBudget(BIG_BUDGET_BYTES, BIG_BUDGET_ROWS)


class RecordingCommitStep:
    """A ``CommitStep`` that applies each effect to a replica before the leader commits.

    Every effect is round-tripped through ``encode_effect``/``decode_effect`` first (the
    bytes are what a Raft log would carry), applied on an APPLIER connection inside one
    transaction together with ``write_applied_index``, and recorded in commit order.
    ``gate`` (optional) runs first on the writer thread: tests use it to hold a commit
    open or to make it fail.
    """

    def __init__(self, replica_path: Path) -> None:
        self.replica_path = replica_path
        opened = open_connection(replica_path, Role.APPLIER, ConnectionLimits())
        self.replica = opened.connection
        effects.ensure_state_table(self.replica)
        self.commits: list[tuple[int, effects.Effect]] = []
        self.apply_errors: list[BaseException] = []
        self.gate: Callable[[effects.Effect], None] | None = None
        self.lock = threading.Lock()

    def commit(self, database: str, effect: effects.Effect, applied_index: int,
               request_ids: Sequence[str] = ()) -> int:
        if self.gate is not None:
            self.gate(effect)
        data = effects.encode_effect(effect)
        decoded = effects.decode_effect(data)
        assert decoded == effect
        assert effects.encode_effect(decoded) == data
        index = applied_index + 1
        self.replica.execute("BEGIN IMMEDIATE")
        try:
            effects.apply_effect(self.replica, decoded)
            effects.write_applied_index(self.replica, index)
            self.replica.execute("COMMIT")
        except BaseException as exc:
            self.replica.execute("ROLLBACK")
            self.apply_errors.append(exc)
            raise
        with self.lock:
            self.commits.append((index, decoded))
        return index

    @property
    def commit_count(self) -> int:
        with self.lock:
            return len(self.commits)

    def close(self) -> None:
        self.replica.close()


class Node:
    """A leader ``Database`` with a recording commit step and its replica file."""

    def __init__(self, directory: Path, config: DatabaseConfig | None = None,
                 name: str = "test") -> None:
        self.directory = directory
        self.path = directory / f"{name}.db"
        self.replica_path = directory / f"{name}-replica.db"
        self.step = RecordingCommitStep(self.replica_path)
        self.config = config or DatabaseConfig(read_connections=2)
        self.db = Database(name, self.path, self.config, self.step)

    # --- running programs ------------------------------------------------------------

    def session(self, *, read_only: bool = False) -> SqlSession:
        return self.db.open_session(read_only=read_only)

    def submit(self, session: SqlSession, program: Callable[[SqlContext], Any], *,
               budget: ResponseBudget | None = None,
               prefer_reader: bool = True) -> Waiter:
        waiter = Waiter()
        self.db.submit(session, program, budget=budget or big_budget(),
                       on_done=waiter.done, prefer_reader=prefer_reader)
        return waiter

    def run(self, session: SqlSession, program: Callable[[SqlContext], Any], *,
            budget: ResponseBudget | None = None, prefer_reader: bool = True) -> JobOutcome:
        return self.submit(session, program, budget=budget,
                           prefer_reader=prefer_reader).wait()

    def execute(self, session: SqlSession, sql: str, args: Sequence[Value] = (),
                named_args: Mapping[str, Value] | None = None, *,
                prefer_reader: bool = True,
                budget: ResponseBudget | None = None) -> StatementResult:
        """Run one statement; raise its error."""
        outcome = self.run(session, lambda ctx: ctx.execute(sql, args, named_args or {}),
                           budget=budget, prefer_reader=prefer_reader)
        if outcome.error is not None:
            raise outcome.error
        result = outcome.value
        assert isinstance(result, StatementResult)
        return result

    def rows(self, session: SqlSession, sql: str, args: Sequence[Value] = (), **kw: Any
             ) -> list[tuple[Value, ...]]:
        return self.execute(session, sql, args, **kw).rows

    def script(self, session: SqlSession, sql: str, *, prefer_reader: bool = True) -> None:
        outcome = self.run(session, lambda ctx: ctx.execute_script(sql),
                           prefer_reader=prefer_reader)
        if outcome.error is not None:
            raise outcome.error

    def close_session(self, session: SqlSession) -> JobOutcome:
        waiter = Waiter()
        self.db.close_session(session, waiter.done)
        return waiter.wait()

    # --- checking --------------------------------------------------------------------

    def assert_replica_matches(self) -> None:
        assert not self.step.apply_errors, self.step.apply_errors
        leader = dump_database(self.path)
        replica = dump_database(self.replica_path)
        assert replica.keys() == leader.keys()
        for key in leader:
            assert replica[key] == leader[key], f"replica differs from leader in {key}"
        check_fts5_integrity(self.replica_path)
        check_fts5_integrity(self.path)
        assert read_applied_index(self.replica_path) == self.db.applied_index

    def close(self) -> None:
        self.db.close()
        self.step.close()


class Waiter:
    """Collects one ``JobOutcome`` from a storage thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._outcomes: list[JobOutcome] = []

    def done(self, outcome: JobOutcome) -> None:
        self._outcomes.append(outcome)
        self._event.set()

    @property
    def finished(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float = WAIT_S) -> JobOutcome:
        if not self._event.wait(timeout_s):
            raise AssertionError(f"job did not finish within {timeout_s}s")
        assert len(self._outcomes) == 1, f"job acknowledged {len(self._outcomes)} times"
        return self._outcomes[0]

    @property
    def acknowledgements(self) -> int:
        return len(self._outcomes)


# --- comparing databases ---------------------------------------------------------------

def _typed(row: Sequence[Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((type(value).__name__, value) for value in row)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dump_database(path: Path) -> dict[str, Any]:
    """Everything a replica must reproduce, keyed by what it is.

    Rowid tables whose PRIMARY KEY is not the rowid (e.g. ``TEXT PRIMARY KEY``) are
    compared by content only; their rowids are reported separately under
    ``rowids:<table>`` by ``dump_hidden_rowids``.
    """
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        out: dict[str, Any] = {
            "schema": list(connection.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")),
            "user_version": connection.execute("PRAGMA user_version").fetchone()[0],
            "application_id": connection.execute("PRAGMA application_id").fetchone()[0],
        }
        for name, wr in connection.execute(
                "SELECT name, wr FROM pragma_table_list WHERE schema='main' AND type='table'"):
            if name == effects.STATE_TABLE:
                continue
            out[f"table:{name}"] = _table_rows(connection, name, bool(wr))
        return out
    finally:
        connection.close()


def table_kind(connection: apsw.Connection, name: str, without_rowid: bool) -> str:
    """'without_rowid', 'internal' (sqlite_*), 'rowid' (rowid visible) or 'hidden_rowid'."""
    if without_rowid:
        return "without_rowid"
    if name.startswith("sqlite_"):
        return "internal"
    pk = [(row[2] or "").upper() for row in connection.execute(
        f"PRAGMA table_xinfo({_quote(name)})") if row[5]]
    if not pk or pk == ["INTEGER"]:
        return "rowid"
    return "hidden_rowid"


def _table_rows(connection: apsw.Connection, name: str, without_rowid: bool) -> list[Any]:
    kind = table_kind(connection, name, without_rowid)
    quoted = _quote(name)
    width = len(list(connection.execute(f"PRAGMA table_info({quoted})")))
    everything = ", ".join(str(i) for i in range(1, width + 1))
    if kind == "rowid":
        sql = f"SELECT rowid, * FROM {quoted} ORDER BY rowid"
    else:
        sql = f"SELECT * FROM {quoted} ORDER BY {everything}"
    return [_typed(row) for row in connection.execute(sql)]


def dump_hidden_rowids(path: Path) -> dict[str, list[Any]]:
    """Rowids of rowid tables with a non-INTEGER PRIMARY KEY, by table, ordered by key."""
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        out = {}
        for name, wr in connection.execute(
                "SELECT name, wr FROM pragma_table_list WHERE schema='main' AND type='table'"):
            if table_kind(connection, name, bool(wr)) == "hidden_rowid":
                width = len(list(connection.execute(f"PRAGMA table_info({_quote(name)})")))
                order = ", ".join(str(i) for i in range(2, width + 2))
                out[name] = list(connection.execute(
                    f"SELECT rowid, * FROM {_quote(name)} ORDER BY {order}"))
        return out
    finally:
        connection.close()


def check_fts5_integrity(path: Path) -> None:
    connection = apsw.Connection(str(path))
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_schema WHERE type='table' "
            "AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'")]
        for table in tables:
            quoted = _quote(table)
            connection.execute(f"INSERT INTO {quoted}({quoted}) VALUES ('integrity-check')")
    finally:
        connection.close()


def read_applied_index(path: Path) -> int:
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return effects.read_applied_index(connection)
    finally:
        connection.close()


def query_file(path: Path, sql: str, args: Sequence[Value] = ()) -> list[tuple[Any, ...]]:
    """Read a database file directly (no edgelite in between)."""
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return list(connection.execute(sql, args))
    finally:
        connection.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    created = Node(tmp_path)
    yield created
    created.close()


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    nodes: list[Node] = []

    def make(config: DatabaseConfig | None = None, name: str = "test") -> Node:
        created = Node(tmp_path, config, name)
        nodes.append(created)
        return created

    yield make
    for created in nodes:
        created.close()
