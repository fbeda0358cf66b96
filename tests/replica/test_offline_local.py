"""Offline replicas without a server: capture into the outbox, rebase, file checks.

The replica file is made from a local ``Origin`` (real effects, ``local_origin.py``);
``sync_url`` points at a closed port, so the replica opens the way a device boots with
no network. Pulls are fed to the replicator as ``PullBatch`` values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apsw
import pytest

import edgelite
from edgelite.replica import files, outbox
from edgelite.replica.connection import ReplicaConnection
from edgelite.replica.errors import DatabaseMismatchError, NotAReplicaError
from edgelite.replica.remote import PullBatch
from edgelite.storage.content_hash import content_hash
from tests.replica.local_origin import DATABASE_ID, Origin, make_replica, merge_into

NOWHERE = "http://127.0.0.1:9"  # discard port: connection refused at once

NOTES = "CREATE TABLE notes(id INTEGER PRIMARY KEY, content TEXT, version INTEGER)"
READINGS = "CREATE TABLE readings(device_id TEXT, seq INTEGER, temperature REAL)"


def open_offline(path: Path) -> ReplicaConnection:
    conn = edgelite.connect(str(path), sync_url=NOWHERE, offline=True, timeout=1.0)
    assert isinstance(conn, ReplicaConnection)
    return conn


def pull(conn: ReplicaConnection, origin: Origin) -> None:
    replicator = conn._transport.replicator
    replicator.apply_batch(PullBatch(DATABASE_ID, tuple(origin.since(replicator.applied_index)),
                                     origin.index))


def set_policy(origin: Origin, table: str, policy: str) -> None:
    """What the admin API does: a replicated write of the policy table."""
    origin.write("CREATE TABLE IF NOT EXISTS _edgelite_conflict_policy"
                 "(table_name TEXT PRIMARY KEY, policy TEXT NOT NULL) WITHOUT ROWID",
                 f"INSERT OR REPLACE INTO _edgelite_conflict_policy VALUES ('{table}', "
                 f"'{policy}')")


def rows_of(conn: ReplicaConnection) -> list[outbox.OutboxEntry]:
    return outbox.entries(conn._transport.replicator.apply_connection)


def same_content(replica: Path, origin: Origin) -> bool:
    origin.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    return content_hash(replica) == content_hash(origin.path)


@pytest.fixture
def replica(tmp_path: Path, origin: Origin) -> Path:
    origin.write(NOTES, READINGS)
    origin.write("INSERT INTO notes VALUES (1, 'a', 1), (2, 'b', 1)")
    path = tmp_path / "replica.db"
    make_replica(origin, path)
    return path


# --- capture ----------------------------------------------------------------------------

def test_every_committed_write_is_one_outbox_row(replica: Path) -> None:
    conn = open_offline(replica)
    conn.execute("INSERT INTO readings VALUES ('gw', 1, 20.5)")  # legacy: BEGIN implied
    conn.commit()
    with conn:
        conn.execute("UPDATE notes SET content = 'x' WHERE id = 1")
        conn.execute("DELETE FROM notes WHERE id = 2")
    conn.execute("INSERT INTO readings VALUES ('gw', 2, 21.0)")
    conn.rollback()
    conn.executemany("INSERT INTO readings VALUES ('gw', ?, 0.0)", [(3,), (4,)])
    conn.commit()
    entries = rows_of(conn)
    assert len(entries) == 3
    ops = [[(c.name, c.op) for c in apsw.Changeset.iter(e.changeset)] for e in entries]
    assert ops[0] == [("readings", "INSERT")]
    assert sorted(ops[1]) == [("notes", "DELETE"), ("notes", "UPDATE")]
    assert ops[2] == [("readings", "INSERT"), ("readings", "INSERT")]
    assert len({e.request_id for e in entries}) == 3
    clocks = [json.loads(e.hlc_json) for e in entries]
    assert clocks[1][0][:2] in (["notes", "[1]"], ["notes", "[2]"])
    assert clocks[0][0][2] < clocks[1][0][2] < clocks[2][0][2]  # the replica's HLC grows
    conn.close()


def test_autocommit_mode_savepoints_and_scripts_are_captured(replica: Path) -> None:
    conn = open_offline(replica)
    conn.autocommit = True
    cur = conn.execute("INSERT INTO notes VALUES (10, 'auto', 1)")
    assert cur.rowcount == 1 and cur.lastrowid == 10  # not the outbox row's id
    conn.execute("SAVEPOINT outer_sp")
    conn.execute("INSERT INTO notes VALUES (11, 'sp', 1)")
    conn.execute("SAVEPOINT inner_sp")
    conn.execute("INSERT INTO notes VALUES (12, 'undone', 1)")
    conn.execute("ROLLBACK TO inner_sp")
    conn.execute("RELEASE inner_sp")
    assert conn.in_transaction
    conn.execute("RELEASE outer_sp")  # the savepoint that opened the transaction commits
    assert not conn.in_transaction
    conn.executescript("BEGIN; INSERT INTO notes VALUES (13, 's', 1); COMMIT; "
                       "INSERT INTO notes VALUES (14, 't', 1);")
    inserted = [[c.new[0] for c in apsw.Changeset.iter(e.changeset)] for e in rows_of(conn)]
    assert inserted == [[10], [11], [13], [14]]
    conn.close()


def test_outbox_survives_reopen_and_matches_the_data(replica: Path) -> None:
    conn = open_offline(replica)
    for seq in range(20):
        conn.execute("INSERT INTO readings VALUES ('gw', ?, 1.0)", (seq,))
        conn.commit()
    conn.close()
    conn = open_offline(replica)
    assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 20
    assert len(rows_of(conn)) == 20
    conn.close()


def test_schema_changes_and_reserved_tables_are_refused(replica: Path) -> None:
    conn = open_offline(replica)
    for sql in ("CREATE TABLE t(a)", "ALTER TABLE notes ADD COLUMN x", "DROP TABLE notes",
                "CREATE INDEX i ON notes(content)", "PRAGMA user_version = 3"):
        with pytest.raises(edgelite.OperationalError) as caught:
            conn.execute(sql)
        assert "schema changes must be made on the server" in str(caught.value)
        assert caught.value.code == "SCHEMA_CHANGE_OFFLINE"
    with pytest.raises(edgelite.OperationalError, match="schema changes"):
        conn.executescript("INSERT INTO notes VALUES (20, 'ok', 1); CREATE TABLE u(a);")
    with pytest.raises(edgelite.DatabaseError, match="reserved for edgelite"):
        conn.execute("DELETE FROM _edgelite_outbox")
    with pytest.raises(edgelite.DatabaseError, match="reserved for edgelite"):
        conn.execute("UPDATE _edgelite_state SET value = 0")
    with pytest.raises(edgelite.DatabaseError, match="cannot be changed"):
        conn.execute("PRAGMA journal_mode = DELETE")
    # The script's first statement ran (as sqlite3 runs scripts) and was captured.
    assert conn.execute("SELECT content FROM notes WHERE id = 20").fetchone() == ("ok",)
    assert len(rows_of(conn)) == 1
    conn.close()


def test_offline_writes_to_virtual_tables_are_refused(replica: Path, origin: Origin) -> None:
    origin.write("CREATE VIRTUAL TABLE articles USING fts5(title, body)",
                 "CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT)",
                 "CREATE TRIGGER index_post AFTER INSERT ON posts BEGIN "
                 "INSERT INTO articles(title, body) VALUES (new.title, ''); END")
    conn = open_offline(replica)
    pull(conn, origin)
    with pytest.raises(edgelite.DatabaseError, match="virtual table"):
        conn.execute("INSERT INTO articles(title, body) VALUES ('a', 'b')")
    with pytest.raises(edgelite.DatabaseError, match="through trigger index_post"):
        conn.execute("INSERT INTO posts(title) VALUES ('p')")
    conn.rollback()
    conn.execute("INSERT INTO notes VALUES (30, 'fine', 1)")  # ordinary tables still work
    conn.commit()
    assert conn.execute("SELECT count(*) FROM articles WHERE articles MATCH 'a'").fetchone() \
        == (0,)
    assert len(rows_of(conn)) == 1
    conn.close()


# --- rebase -----------------------------------------------------------------------------

def test_pulled_entries_without_local_changes_reproduce_the_origin(
        replica: Path, origin: Origin) -> None:
    conn = open_offline(replica)
    origin.write("INSERT INTO notes VALUES (3, 'c', 1)", "UPDATE notes SET version = 2")
    origin.write("ALTER TABLE notes ADD COLUMN tag TEXT DEFAULT 'none'",
                 "UPDATE notes SET tag = 'x' WHERE id = 1")
    origin.write("CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, v)",
                 "INSERT INTO seq(v) VALUES (1), (2)")
    pull(conn, origin)
    assert conn._transport.replicator.applied_index == origin.index
    assert conn.execute("SELECT tag FROM notes WHERE id = 1").fetchone() == ("x",)
    conn.close()
    assert same_content(replica, origin)
    assert files.inspect_file(replica).state is files.FileState.VALID


def test_local_changes_are_rebased_onto_pulled_ones(replica: Path, origin: Origin) -> None:
    conn = open_offline(replica)
    conn.execute("UPDATE notes SET content = 'mine' WHERE id = 1")
    conn.execute("INSERT INTO readings VALUES ('gw', 1, 3.0)")
    conn.commit()
    origin.write("UPDATE notes SET content = 'theirs' WHERE id = 2",
                 "INSERT INTO notes VALUES (3, 'new', 1)")
    pull(conn, origin)
    # No conflict: the local change stays on top of the pulled state.
    assert conn.execute("SELECT id, content FROM notes ORDER BY id").fetchall() == [
        (1, "mine"), (2, "theirs"), (3, "new")]
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (1,)
    assert len(rows_of(conn)) == 1
    conn.close()


def test_conflicting_local_change_follows_the_tables_policy(
        replica: Path, origin: Origin) -> None:
    set_policy(origin, "notes", "max-version:version")
    conn = open_offline(replica)
    pull(conn, origin)
    conn.execute("UPDATE notes SET content = 'v5', version = 5 WHERE id = 1")
    conn.execute("UPDATE notes SET content = 'v2', version = 2 WHERE id = 2")
    conn.commit()
    origin.write("UPDATE notes SET content = 'server3', version = 3")
    pull(conn, origin)
    # Higher version wins: note 1 keeps the local 5, note 2 takes the server's 3.
    assert conn.execute("SELECT id, content, version FROM notes ORDER BY id").fetchall() == [
        (1, "v5", 5), (2, "server3", 3)]
    conn.close()


def test_acknowledged_rows_are_dropped_once_their_merge_is_pulled(
        replica: Path, origin: Origin) -> None:
    conn = open_offline(replica)
    conn.execute("INSERT INTO readings VALUES ('gw', 1, 1.0)")
    conn.commit()
    conn.execute("INSERT INTO readings VALUES ('gw', 2, 2.0)")
    conn.commit()
    first, second = rows_of(conn)
    entry = merge_into(origin, [first.changeset])
    apply = conn._transport.replicator.apply_connection
    outbox.mark_acked(apply, [first.id], entry.index)
    pull(conn, origin)
    assert [row.id for row in rows_of(conn)] == [second.id]
    assert conn.execute("SELECT seq FROM readings ORDER BY seq").fetchall() == [(1,), (2,)]
    entry = merge_into(origin, [second.changeset])
    outbox.mark_acked(apply, [second.id], entry.index)
    pull(conn, origin)
    assert rows_of(conn) == []
    conn.close()
    assert same_content(replica, origin)


def test_insert_into_rowid_table_whose_rowid_was_taken_becomes_a_new_row(
        replica: Path, origin: Origin) -> None:
    conn = open_offline(replica)
    conn.execute("INSERT INTO readings VALUES ('mine', 1, 1.0)")
    conn.commit()
    origin.write("INSERT INTO readings VALUES ('other', 7, 7.0)")  # takes rowid 1 too
    pull(conn, origin)
    assert conn.execute("SELECT device_id FROM readings ORDER BY rowid").fetchall() == [
        ("other",), ("mine",)]
    conn.close()


def test_pulled_schema_change_under_pending_local_changes(
        replica: Path, origin: Origin) -> None:
    conn = open_offline(replica)
    conn.execute("INSERT INTO notes VALUES (5, 'local', 1)")
    conn.commit()
    origin.write("ALTER TABLE notes ADD COLUMN tag TEXT DEFAULT 'd'")
    pull(conn, origin)
    assert conn.execute("SELECT id, content, tag FROM notes WHERE id = 5").fetchone() == (
        5, "local", "d")
    conn.execute("UPDATE notes SET tag = 'local-tag' WHERE id = 5")
    conn.commit()
    assert len(rows_of(conn)) == 2
    conn.close()


def test_autoincrement_counters_follow_the_server_after_rebase(
        replica: Path, origin: Origin) -> None:
    origin.write("CREATE TABLE hits(id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT)")
    conn = open_offline(replica)
    pull(conn, origin)
    apply = conn._transport.replicator.apply_connection
    conn.execute("INSERT INTO hits(path) VALUES ('/local')")  # id 1: the local counter moves
    conn.commit()
    origin.write("UPDATE notes SET version = 9 WHERE id = 1")  # leaves hits alone
    pull(conn, origin)
    # The server's counters are remembered as the server has them (none yet), not as the
    # pending local insert moved them; locally that insert still counts.
    assert files.read_json_meta(apply, "server_sequence") == []
    assert conn.execute("SELECT seq FROM sqlite_sequence").fetchall() == [(1,)]
    origin.write("INSERT INTO hits(path) VALUES ('/a'), ('/b')")
    pull(conn, origin)
    assert files.read_json_meta(apply, "server_sequence") == [["hits", 2]]
    row = rows_of(conn)[0]
    entry = merge_into(origin, [row.changeset])  # id 1 is taken there: set aside
    outbox.mark_acked(apply, [row.id], entry.index)
    pull(conn, origin)
    conn.close()
    assert same_content(replica, origin)


# --- the file ---------------------------------------------------------------------------

def test_a_file_that_is_not_a_replica_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "mine.db"
    own = apsw.Connection(str(path))
    own.execute("CREATE TABLE precious(x); INSERT INTO precious VALUES (42)")
    own.close()
    before = path.read_bytes()
    with pytest.raises(NotAReplicaError, match="not an edgelite replica file"):
        edgelite.connect(str(path), sync_url=NOWHERE, offline=True, timeout=1.0)
    assert path.read_bytes() == before


def test_broken_metadata_is_detected(replica: Path) -> None:
    connection = apsw.Connection(str(replica))
    connection.execute("UPDATE _edgelite_replica SET value = 0 WHERE key = 'applied_index'")
    connection.close()
    inspection = files.inspect_file(replica)
    assert inspection.state is files.FileState.BROKEN_METADATA
    assert "disagrees" in inspection.reason


def test_corruption_is_detected(replica: Path) -> None:
    data = bytearray(replica.read_bytes())
    page = 4096
    assert len(data) >= 3 * page
    data[page + 100:2 * page] = b"\xa5" * (page - 100)  # garbage inside a b-tree page
    replica.write_bytes(bytes(data))
    assert files.inspect_file(replica).state is files.FileState.CORRUPT


def test_pull_for_another_database_is_refused(replica: Path, origin: Origin) -> None:
    conn = open_offline(replica)
    origin.write("INSERT INTO notes VALUES (9, 'z', 1)")
    batch = PullBatch("other/default/1", tuple(origin.since(0)), origin.index)
    with pytest.raises(DatabaseMismatchError, match="follows one database only"):
        conn._transport.replicator.apply_batch(batch)
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (2,)
    conn.close()


def test_sync_without_server_says_it_is_unavailable(replica: Path) -> None:
    conn = open_offline(replica)
    conn.execute("INSERT INTO readings VALUES ('gw', 1, 1.0)")
    conn.commit()
    with pytest.raises(edgelite.OperationalError) as caught:
        conn.sync()
    assert caught.value.code == "REPLICA_SYNC_UNAVAILABLE"
    assert len(rows_of(conn)) == 1  # nothing lost, the push stays in flight
    conn.close()


def _values(conn: Any, sql: str) -> list[Any]:
    return [row[0] for row in conn.execute(sql).fetchall()]


# --- the read fast path -------------------------------------------------------------------

def test_fast_path_reads_match_the_general_path(replica: Path) -> None:
    conn = open_offline(replica)
    cases: list[tuple[str, Any]] = [
        ("SELECT id, content FROM notes ORDER BY id", ()),
        ("SELECT id FROM notes WHERE id = ?", (1,)),
        ("SELECT id FROM notes WHERE id = ?", [2]),
        ("SELECT id, content AS c, 1 + 1 FROM notes WHERE id = ?", (99,)),  # no row
        ("SELECT id FROM notes WHERE content = :c", {"c": "a"}),  # mapping: general path
        ("SELECT ?", (True,)),  # adaptation: general path
        ("PRAGMA table_info(notes)", ()),
    ]
    conn.execute("INSERT INTO notes VALUES (3, 'c', 1)")  # lastrowid 3, kept by reads
    conn.commit()
    cur = conn.cursor()
    cur.execute("INSERT INTO notes VALUES (4, 'd', 1)")
    conn.commit()
    fast_reader = conn._transport.inner.fast
    for sql, params in cases:
        fast = cur.execute(sql, params)
        got = (fast.description, fast.fetchall(), fast.rowcount, fast.lastrowid)
        assert got == _general(conn, sql, params), sql
    assert fast_reader.served == 5  # all but the mapping and the bool
    conn.row_factory = edgelite.Row
    row = conn.execute("SELECT id, content FROM notes WHERE id = ?", (1,)).fetchone()
    assert row["content"] == "a" and row.keys() == ["id", "content"]
    conn.row_factory = None
    conn.text_factory = bytes
    assert conn.execute("SELECT content FROM notes WHERE id = 1").fetchall() == [(b"a",)]
    conn.text_factory = str
    with pytest.raises(edgelite.OperationalError, match="no such table"):
        conn.execute("SELECT * FROM missing WHERE x = ?", (1,))
    with pytest.raises(OverflowError):
        conn.execute("SELECT ?", (2**70,))
    conn.close()


def _general(conn: ReplicaConnection, sql: str, params: Any) -> tuple[Any, ...]:
    """The same statement through the session and transport (no fast path)."""
    from edgelite.client.connection import Cursor

    cur = Cursor(conn)
    cur._state.lastrowid = 4  # what the fast cursor carries from its earlier insert
    cur.execute(sql, params)
    return (cur.description, cur.fetchall(), cur.rowcount, cur.lastrowid)


@pytest.mark.parametrize("seed", range(6))
def test_random_offline_histories_end_equal_to_the_origin(
        tmp_path: Path, origin: Origin, seed: int) -> None:
    """Local writes, server writes, pushes (merged server-wins), acks and pulls in a
    random order; once everything is pushed and pulled the file is the origin."""
    import random

    origin.write(NOTES, READINGS, "CREATE TABLE hits(id INTEGER PRIMARY KEY AUTOINCREMENT, "
                 "path TEXT)")
    origin.write("INSERT INTO notes VALUES (1, 'a', 1), (2, 'b', 1), (3, 'c', 1)")
    path = tmp_path / "replica.db"
    make_replica(origin, path)
    conn = open_offline(path)
    apply = conn._transport.replicator.apply_connection
    rng = random.Random(seed)
    for step in range(120):
        action = rng.random()
        note = rng.randint(1, 6)
        if action < 0.45:
            conn.execute(rng.choice([
                f"INSERT OR REPLACE INTO notes VALUES ({note}, 'local{step}', {step})",
                f"UPDATE notes SET content = 'l{step}' WHERE id = {note}",
                f"DELETE FROM notes WHERE id = {note}",
                f"INSERT INTO readings VALUES ('gw', {step}, 1.0)",
                f"INSERT INTO hits(path) VALUES ('/l{step}')"]))
            conn.commit()
        elif action < 0.7:
            origin.write(rng.choice([
                f"INSERT OR REPLACE INTO notes VALUES ({note}, 'srv{step}', {step})",
                f"UPDATE notes SET version = version + 1 WHERE id = {note}",
                f"DELETE FROM notes WHERE id = {note}",
                f"INSERT INTO readings VALUES ('other', {step}, 2.0)",
                f"INSERT INTO hits(path) VALUES ('/s{step}')"]))
        elif action < 0.85:
            _push_some(apply, origin, rng.randint(1, 4))
        else:
            pull(conn, origin)
    while outbox.entries(apply, unacked_only=True):
        _push_some(apply, origin, 10)
    pull(conn, origin)
    assert rows_of(conn) == []
    conn.close()
    assert same_content(path, origin)


def _push_some(apply: apsw.Connection, origin: Origin, count: int) -> None:
    """What a push does: the server merges the oldest unacknowledged rows in one entry."""
    rows = outbox.entries(apply, unacked_only=True)[:count]
    if rows:
        entry = merge_into(origin, [row.changeset for row in rows])
        outbox.mark_acked(apply, [row.id for row in rows], entry.index)
