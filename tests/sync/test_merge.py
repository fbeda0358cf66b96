"""Merging pushed changesets on a real writer (storage/merge.py), policy by policy.

Each test builds a *replica*: a copy of the server database taken with the backup API,
changes it under an SQLite session (what an offline embedded replica records), changes
the server meanwhile, then merges the replica's changeset on the server's writer. The
commit step replays every effect onto a follower copy, which must end equal to the
server: a merge replicates like any write.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from edgelite.errors import AlreadyAppliedError, ProtocolError
from edgelite.storage import effects, merge
from edgelite.storage.conflict_policy import parse_policy
from edgelite.storage.connection import ConnectionLimits, Role, open_connection
from edgelite.storage.database import Database
from edgelite.storage.executor import ResponseBudget
from edgelite.storage.hlc import pack
from edgelite.storage.session import Job, JobOutcome, SqlSession
from edgelite.storage.snapshot_files import backup_file
from edgelite.storage.sync_tables import pk_key

NOW_MS = int(time.time() * 1000)


class FollowerStep:
    """Commit step applying each effect to a follower copy (as Raft followers do)."""

    def __init__(self, path: Path) -> None:
        self.follower = open_connection(path, Role.APPLIER, ConnectionLimits()).connection
        effects.ensure_state_table(self.follower)

    def commit(self, database: str, effect: effects.Effect, applied_index: int,
               request_ids: Any = ()) -> int:
        index = applied_index + 1
        self.follower.execute("BEGIN IMMEDIATE")
        effects.apply_effect(self.follower, effects.decode_effect(effects.encode_effect(effect)))
        effects.write_applied_index(self.follower, index)
        self.follower.execute("COMMIT")
        return index


class Server:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.step = FollowerStep(directory / "follower.db")
        self.db = Database("default", directory / "server.db", commit_step=self.step)
        self.replicas = 0

    def run(self, program: Any, request_id: str = "") -> JobOutcome:
        done: concurrent.futures.Future[JobOutcome] = concurrent.futures.Future()
        self.db.writer.submit(Job(SqlSession(read_only=False), program,
                                  ResponseBudget(1 << 20, 10_000), done.set_result,
                                  solo=True, request_id=request_id))
        return done.result(timeout=20)

    def sql(self, *statements: str) -> None:
        for statement in statements:
            outcome = self.run(lambda ctx, s=statement: ctx.execute(s))
            assert outcome.error is None, outcome.error

    def rows(self, sql: str, path: Path | None = None) -> list[tuple[Any, ...]]:
        with apsw.Connection(str(path or self.db.path)) as connection:
            return [tuple(row) for row in connection.execute(sql)]

    def policy(self, table: str, text: str) -> None:
        outcome = self.run(merge.set_policy_program(table, parse_policy(text)))
        assert outcome.error is None, outcome.error

    def replica(self) -> apsw.Connection:
        """A copy of the server as it is now (a freshly bootstrapped replica)."""
        self.replicas += 1
        path = self.directory / f"replica-{self.replicas}.db"
        backup_file(self.db.path, path)
        return apsw.Connection(str(path))

    def push(self, changesets: list[bytes], clocks: dict[tuple[str, str], int] | None = None,
             request_id: str = "push") -> merge.MergeOutcome:
        work = merge.Push(tuple(changesets), clocks or {}, request_id, NOW_MS)
        outcome = self.run(merge.merge_program(work), request_id)
        if outcome.error is not None:
            raise outcome.error
        return outcome.value

    def conflicts(self) -> list[dict[str, Any]]:
        columns = ["table_name", "pk_json", "op", "reason", "pushed_json", "current_json",
                   "request_id"]
        rows = self.rows(f"SELECT {', '.join(columns)} FROM _edgelite_conflicts ORDER BY id")
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def assert_follower_matches(self) -> None:
        for table in ("notes", "log", "_edgelite_row_clock", "_edgelite_conflicts"):
            sql = f"SELECT * FROM {table} ORDER BY 1, 2"
            try:
                expected = self.rows(sql)
            except apsw.SQLError:
                continue
            assert self.rows(sql, self.directory / "follower.db") == expected, table


def changes(replica: apsw.Connection, *statements: str) -> bytes:
    session = apsw.Session(replica, "main")
    session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
    session.attach(None)
    for statement in statements:
        replica.execute(statement)
    changeset = session.changeset()
    session.close()
    return changeset


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    made = Server(tmp_path)
    made.sql("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, version INTEGER)",
             "INSERT INTO notes VALUES (1, 'one', 1), (2, 'two', 1)")
    yield made
    made.db.close()


def test_a_push_without_conflicts_applies_and_replicates(server: Server) -> None:
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO notes VALUES (3, 'three', 1)",
                     "UPDATE notes SET body = 'uno' WHERE id = 1", "DELETE FROM notes WHERE id = 2")
    outcome = server.push([pushed])
    assert (outcome.applied, outcome.conflicts, outcome.recorded) == (3, 0, 0)
    assert outcome.index == server.db.applied_index
    assert server.rows("SELECT * FROM notes ORDER BY id") == [(1, "uno", 1), (3, "three", 1)]
    server.assert_follower_matches()


def concurrent_edit(server: Server, policy: str | None) -> tuple[bytes, apsw.Connection]:
    """The replica and the server both edit note 1; the server's edit commits first."""
    if policy is not None:
        server.policy("notes", policy)
    replica = server.replica()
    pushed = changes(replica, "UPDATE notes SET body = 'client', version = 3 WHERE id = 1")
    server.sql("UPDATE notes SET body = 'server', version = 2 WHERE id = 1")
    return pushed, replica


@pytest.mark.parametrize(("policy", "winner"), [(None, "server"), ("server-wins", "server"),
                                                ("client-wins", "client"),
                                                ("max-version:version", "client")])
def test_policies_on_a_concurrent_update(server: Server, policy: str | None,
                                         winner: str) -> None:
    pushed, _ = concurrent_edit(server, policy)
    outcome = server.push([pushed])
    assert server.rows("SELECT body FROM notes WHERE id = 1") == [(winner,)]
    assert outcome.conflicts == (0 if winner == "client" else 1)
    server.assert_follower_matches()


def test_max_version_keeps_the_higher_version_and_the_server_on_ties(server: Server) -> None:
    server.policy("notes", "max-version:version")
    replica = server.replica()
    lower = changes(replica, "UPDATE notes SET body = 'client', version = 2 WHERE id = 1")
    server.sql("UPDATE notes SET body = 'server', version = 5 WHERE id = 1")
    server.push([lower], request_id="lower")
    assert server.rows("SELECT body, version FROM notes WHERE id = 1") == [("server", 5)]
    tie_replica = server.replica()
    tie = changes(tie_replica, "UPDATE notes SET body = 'client', version = 6 WHERE id = 1")
    server.sql("UPDATE notes SET body = 'server2', version = 6 WHERE id = 1")
    server.push([tie], request_id="tie")
    assert server.rows("SELECT body, version FROM notes WHERE id = 1") == [("server2", 6)]


def test_reject_records_the_change_for_the_application(server: Server) -> None:
    pushed, _ = concurrent_edit(server, "reject")
    outcome = server.push([pushed], request_id="req-7")
    assert (outcome.applied, outcome.conflicts, outcome.recorded) == (0, 1, 1)
    assert server.rows("SELECT body FROM notes WHERE id = 1") == [("server",)]
    (record,) = server.conflicts()
    assert record["table_name"] == "notes" and record["pk_json"] == "[1]"
    assert (record["op"], record["reason"], record["request_id"]) == ("update", "data", "req-7")
    assert json.loads(record["pushed_json"]) == {
        "old": {"id": 1, "body": "one", "version": 1}, "new": {"body": "client", "version": 3}}
    assert json.loads(record["current_json"]) == {"id": 1, "body": "server", "version": 2}
    server.assert_follower_matches()


def test_last_writer_wins_compares_clocks(server: Server) -> None:
    pushed, _ = concurrent_edit(server, "last-writer-wins")
    stamped = server.rows("SELECT hlc FROM _edgelite_row_clock WHERE pk = '[1]'")[0][0]
    older = server.push([pushed], {("notes", "[1]"): stamped - 1}, request_id="older")
    assert older.conflicts == 1
    assert server.rows("SELECT body FROM notes WHERE id = 1") == [("server",)]
    newer = server.push([pushed], {("notes", "[1]"): stamped + 1}, request_id="newer")
    assert newer.applied == 1
    assert server.rows("SELECT body FROM notes WHERE id = 1") == [("client",)]
    assert server.rows("SELECT hlc FROM _edgelite_row_clock WHERE pk = '[1]'") == [
        (stamped + 1,)]
    server.assert_follower_matches()


def test_server_writes_stamp_lww_rows_with_the_leaders_clock(server: Server) -> None:
    server.policy("notes", "last-writer-wins")
    server.sql("UPDATE notes SET body = 'a' WHERE id = 2", "INSERT INTO notes VALUES (9, 'n', 1)")
    clocks = dict(server.rows("SELECT pk, hlc FROM _edgelite_row_clock"))
    assert set(clocks) == {"[2]", "[9]"}
    assert all(v >> 16 >= NOW_MS - 60_000 for v in clocks.values())
    server.sql("UPDATE notes SET body = 'b' WHERE id = 2")
    assert server.rows("SELECT hlc FROM _edgelite_row_clock WHERE pk = '[2]'")[0][0] > \
        clocks["[2]"]
    server.sql("DELETE FROM notes WHERE id = 9")  # a deleted row keeps its clock
    assert server.rows("SELECT count(*) FROM _edgelite_row_clock WHERE pk = '[9]'") == [(1,)]
    server.assert_follower_matches()


@pytest.mark.parametrize(("policy", "body", "recorded"), [
    ("server-wins", "server", 0), ("client-wins", "client", 0), ("reject", "server", 1)])
def test_insert_of_a_key_the_server_has(server: Server, policy: str, body: str,
                                        recorded: int) -> None:
    server.policy("notes", policy)
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO notes VALUES (5, 'client', 1)")
    server.sql("INSERT INTO notes VALUES (5, 'server', 1)")
    assert server.push([pushed]).recorded == recorded
    assert server.rows("SELECT body FROM notes WHERE id = 5") == [(body,)]


@pytest.mark.parametrize(("policy", "recorded"), [("client-wins", 0), ("reject", 1)])
def test_an_update_of_a_row_the_server_deleted_cannot_recreate_it(server: Server, policy: str,
                                                                  recorded: int) -> None:
    server.policy("notes", policy)
    replica = server.replica()
    pushed = changes(replica, "UPDATE notes SET body = 'client' WHERE id = 2",
                     "DELETE FROM notes WHERE id = 1")
    server.sql("DELETE FROM notes WHERE id IN (1, 2)")
    outcome = server.push([pushed])
    assert (outcome.conflicts, outcome.recorded) == (2, recorded)
    assert server.rows("SELECT * FROM notes") == []
    if recorded:
        assert [(r["op"], r["reason"]) for r in server.conflicts()] == [("update", "notfound")]


def test_client_wins_deletes_a_row_the_server_changed(server: Server) -> None:
    server.policy("notes", "client-wins")
    replica = server.replica()
    pushed = changes(replica, "DELETE FROM notes WHERE id = 1")
    server.sql("UPDATE notes SET body = 'server' WHERE id = 1")
    assert server.push([pushed]).applied == 1
    assert server.rows("SELECT id FROM notes") == [(2,)]


def test_rows_of_a_table_without_primary_key_are_appended(server: Server) -> None:
    server.sql("CREATE TABLE readings(device TEXT, value REAL)",
               "INSERT INTO readings VALUES ('d0', 0.5)")
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO readings VALUES ('d1', 1.5)",
                     "INSERT INTO readings VALUES ('d1', 2.5)")
    server.sql("INSERT INTO readings VALUES ('server', 9.0)")  # takes the replica's rowid 2
    outcome = server.push([pushed])
    assert (outcome.applied, outcome.conflicts) == (2, 0)
    assert sorted(server.rows("SELECT device, value FROM readings")) == [
        ("d0", 0.5), ("d1", 1.5), ("d1", 2.5), ("server", 9.0)]


def test_constraint_violations_are_skipped_or_recorded(server: Server) -> None:
    server.sql("CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE)")
    server.policy("users", "reject")
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO users VALUES (1, 'a@example.com')")
    server.sql("INSERT INTO users VALUES (2, 'a@example.com')")
    outcome = server.push([pushed])
    assert (outcome.conflicts, outcome.recorded) == (1, 1)
    assert server.conflicts()[0]["reason"] == "constraint"
    assert server.rows("SELECT id FROM users") == [(2,)]


def test_triggers_do_not_fire_again_for_pushed_rows(server: Server) -> None:
    server.sql("CREATE TABLE log(note INTEGER)",
               "CREATE TRIGGER noted AFTER INSERT ON notes BEGIN "
               "INSERT INTO log VALUES (new.id); END")
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO notes VALUES (7, 'x', 1)")  # its trigger ran here
    server.push([pushed])
    assert server.rows("SELECT note FROM log") == [(7,)]  # once: the replica's row
    server.sql("INSERT INTO notes VALUES (8, 'y', 1)")  # and triggers still run for clients
    assert server.rows("SELECT note FROM log ORDER BY note") == [(7,), (8,)]
    server.assert_follower_matches()


def test_changes_to_a_table_the_server_lacks_are_kept_as_conflicts(server: Server) -> None:
    server.sql("CREATE TABLE scratch(id INTEGER PRIMARY KEY, v)")
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO scratch VALUES (1, 'kept')",
                     "INSERT INTO notes VALUES (4, 'four', 1)")
    server.sql("DROP TABLE scratch")
    outcome = server.push([pushed])
    assert (outcome.applied, outcome.conflicts, outcome.recorded) == (1, 1, 1)
    (record,) = server.conflicts()
    assert (record["table_name"], record["reason"]) == ("scratch", "schema")
    assert json.loads(record["pushed_json"])["new"] == {"$0": 1, "$1": "kept"}


def test_columns_added_on_the_server_since_are_fine(server: Server) -> None:
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO notes VALUES (6, 'six', 1)")
    server.sql("ALTER TABLE notes ADD COLUMN tag TEXT DEFAULT 'none'")
    assert server.push([pushed]).applied == 1
    assert server.rows("SELECT * FROM notes WHERE id = 6") == [(6, "six", 1, "none")]


def test_a_retried_push_is_merged_once(server: Server) -> None:
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO notes VALUES (3, 'three', 1)")
    first = server.push([pushed], request_id="same-key")
    with pytest.raises(AlreadyAppliedError) as caught:
        server.push([pushed], request_id="same-key")
    assert caught.value.index == first.index


def test_several_changesets_apply_in_order(server: Server) -> None:
    replica = server.replica()
    first = changes(replica, "INSERT INTO notes VALUES (3, 'draft', 1)")
    second = changes(replica, "UPDATE notes SET body = 'final' WHERE id = 3")
    assert server.push([first, second]).applied == 2
    assert server.rows("SELECT body FROM notes WHERE id = 3") == [("final",)]


@pytest.mark.parametrize("table", ["_edgelite_state", "_edgelite_row_clock"])
def test_reserved_tables_cannot_be_pushed(server: Server, table: str) -> None:
    scratch = apsw.Connection(":memory:")
    scratch.execute(f"CREATE TABLE {table}(key TEXT PRIMARY KEY, value)")
    pushed = changes(scratch, f"INSERT INTO {table} VALUES ('applied_index', 999)")
    with pytest.raises(ProtocolError, match=f"may not change table {table}"):
        server.push([pushed])


def test_sqlite_tables_cannot_be_pushed(server: Server) -> None:
    replica = server.replica()
    pushed = changes(replica, "CREATE INDEX by_body ON notes(body)", "ANALYZE")
    assert any(c.name == "sqlite_stat1" for c in apsw.Changeset.iter(pushed))
    with pytest.raises(ProtocolError, match="may not change table sqlite_stat1"):
        server.push([pushed])


def test_virtual_table_shadow_tables_cannot_be_pushed(server: Server) -> None:
    server.sql("CREATE VIRTUAL TABLE docs USING fts5(body)")
    replica = server.replica()
    pushed = changes(replica, "INSERT INTO docs VALUES ('hello')")
    with pytest.raises(ProtocolError, match="shadow table"):
        server.push([pushed])
    assert server.rows("SELECT count(*) FROM docs") == [(0,)]


def test_garbage_is_refused_before_anything_runs(server: Server) -> None:
    with pytest.raises(ProtocolError, match="change 0 is not a valid SQLite changeset"):
        server.push([b"not a changeset at all"])


def test_a_clock_far_in_the_future_is_refused(server: Server) -> None:
    replica = server.replica()
    pushed = changes(replica, "UPDATE notes SET body = 'x' WHERE id = 1")
    with pytest.raises(ProtocolError, match="ahead of the server"):
        server.push([pushed], {("notes", pk_key([1])): pack(NOW_MS + 86_400_000, 0)})
