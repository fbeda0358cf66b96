"""Embedded replicas against a real server process (``edgelite dev``).

Every test works on tables of its own (the server is shared by the module) and checks
what the application sees through the replica, and the server's own answers.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

import edgelite
from edgelite.replica import ReplicaConnection
from edgelite.replica.errors import DatabaseMismatchError
from edgelite.storage.content_hash import content_hash as file_hash
from tests.replica.servers import content_hash, execute, query, set_policy, wait_until
from tests.support.processes import ServerProcess, start_server

_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("replica-server"), admin=True)
    yield process
    process.stop()


@pytest.fixture
def table() -> str:
    return f"t{next(_names)}"


def replica(path: Path, server: ServerProcess, **options: object) -> ReplicaConnection:
    conn = edgelite.connect(str(path), sync_url=server.url, **options)  # type: ignore[arg-type]
    assert isinstance(conn, ReplicaConnection)
    return conn


def test_bootstrap_pull_and_local_reads(tmp_path: Path, server: ServerProcess,
                                        table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, v TEXT)",
            f"INSERT INTO {table} VALUES (1, 'one'), (2, 'two')")
    conn = replica(tmp_path / "r.db", server)
    assert conn.execute(f"SELECT v FROM {table} ORDER BY id").fetchall() == [("one",), ("two",)]
    index = execute(server.url, f"INSERT INTO {table} VALUES (3, 'three')")
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (2,)  # not pulled yet
    result = conn.sync()
    assert result.applied_index >= index and result.pulled_entries >= 1
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (3,)
    conn.close()
    # The file is the server's database at the replica's index.
    conn = replica(tmp_path / "r.db", server)
    conn.sync()
    conn.close()
    assert file_hash(tmp_path / "r.db") == content_hash(server.admin_url)


def test_writes_go_to_the_server_and_read_your_writes(tmp_path: Path, server: ServerProcess,
                                                      table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, v TEXT)")
    conn = replica(tmp_path / "r.db", server)
    conn.execute(f"INSERT INTO {table} VALUES (1, 'a')")
    conn.commit()
    # No sync() call: the commit returned after the replica applied it.
    assert conn.execute(f"SELECT v FROM {table}").fetchall() == [("a",)]
    assert query(server.url, f"SELECT v FROM {table}") == [("a",)]
    with conn:
        conn.execute(f"UPDATE {table} SET v = 'b' WHERE id = 1")
        # Inside the transaction reads see its own uncommitted write (on the server).
        assert conn.execute(f"SELECT v FROM {table}").fetchone() == ("b",)
    assert conn.execute(f"SELECT v FROM {table}").fetchone() == ("b",)
    conn.autocommit = True
    cur = conn.execute(f"INSERT INTO {table}(v) VALUES ('c')")
    assert cur.lastrowid == 2 and cur.rowcount == 1
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (2,)
    conn.close()


def test_a_read_transaction_that_writes_moves_to_the_server(
        tmp_path: Path, server: ServerProcess, table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, n INTEGER)",
            f"INSERT INTO {table} VALUES (1, 10)")
    conn = replica(tmp_path / "r.db", server, autocommit=False)  # a transaction always open
    (n,) = conn.execute(f"SELECT n FROM {table} WHERE id = 1").fetchone()
    conn.execute(f"UPDATE {table} SET n = ? WHERE id = 1", (n + 1,))
    conn.commit()
    assert conn.execute(f"SELECT n FROM {table}").fetchone() == (11,)
    assert query(server.url, f"SELECT n FROM {table}") == [(11,)]
    conn.close()


def test_server_schema_changes_reach_the_replica(tmp_path: Path, server: ServerProcess,
                                                  table: str) -> None:
    conn = replica(tmp_path / "r.db", server)
    conn.execute(f"CREATE TABLE {table}(id INTEGER PRIMARY KEY)")  # DDL goes to the server
    conn.commit()
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    conn.commit()
    execute(server.url, f"ALTER TABLE {table} ADD COLUMN note TEXT DEFAULT 'x'")
    conn.sync()
    assert conn.execute(f"SELECT id, note FROM {table}").fetchall() == [(1, "x")]
    conn.close()


def test_offline_writes_are_pushed_once_then_pulled(tmp_path: Path, server: ServerProcess,
                                                     table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(device TEXT, seq INTEGER, t REAL)")
    conn = replica(tmp_path / "r.db", server, offline=True)
    for seq in range(50):
        conn.execute(f"INSERT INTO {table} VALUES ('gw', ?, 20.0)", (seq,))
        conn.commit()
    assert query(server.url, f"SELECT count(*) FROM {table}") == [(0,)]
    result = conn.sync()
    assert result.pushed_entries == 50 and result.pending == 0
    assert query(server.url, f"SELECT count(*), count(DISTINCT seq) FROM {table}") == [(50, 50)]
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (50,)
    assert conn.sync().pushed_entries == 0  # nothing twice
    conn.close()


def test_offline_schema_change_is_refused(tmp_path: Path, server: ServerProcess,
                                          table: str) -> None:
    conn = replica(tmp_path / "r.db", server, offline=True)
    with pytest.raises(edgelite.OperationalError,
                       match="schema changes must be made on the server"):
        conn.execute(f"CREATE TABLE {table}(a)")
    conn.close()


def test_a_file_of_another_database_is_refused(tmp_path: Path, server: ServerProcess) -> None:
    other = start_server(tmp_path / "other", name="other")
    try:
        conn = edgelite.connect(str(tmp_path / "r.db"), sync_url=other.url)
        conn.close()
        before = (tmp_path / "r.db").read_bytes()
        with pytest.raises(DatabaseMismatchError, match="follows one database only"):
            replica(tmp_path / "r.db", server)
        assert (tmp_path / "r.db").read_bytes() == before
    finally:
        other.stop()


def test_a_corrupted_file_resyncs(tmp_path: Path, server: ServerProcess, table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, v BLOB)",
            *[f"INSERT INTO {table} VALUES ({i}, randomblob(2000))" for i in range(20)])
    path = tmp_path / "r.db"
    replica(path, server).close()
    data = bytearray(path.read_bytes())
    data[4096 * 3:4096 * 5] = b"\x00\xff" * 4096
    path.write_bytes(bytes(data))
    conn = replica(path, server)
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (20,)
    assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
    conn.close()


def test_broken_metadata_resyncs(tmp_path: Path, server: ServerProcess, table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(id INTEGER PRIMARY KEY)",
            f"INSERT INTO {table} VALUES (7)")
    path = tmp_path / "r.db"
    replica(path, server).close()
    raw = apsw.Connection(str(path))
    raw.execute("DELETE FROM _edgelite_replica WHERE key = 'database_id'")
    raw.close()
    conn = replica(path, server)
    assert conn.execute(f"SELECT id FROM {table}").fetchall() == [(7,)]
    conn.close()


def test_background_sync_pulls_without_being_asked(tmp_path: Path, server: ServerProcess,
                                                   table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(id INTEGER PRIMARY KEY)")
    conn = replica(tmp_path / "r.db", server, sync_interval=0.05)
    execute(server.url, f"INSERT INTO {table} VALUES (1)")
    wait_until(lambda: conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,),
               what="the background sync pulled the insert")
    conn.close()


async def test_asyncio_replica(tmp_path: Path, server: ServerProcess, table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, v TEXT)")
    async with edgelite.aio.connect(str(tmp_path / "r.db"), sync_url=server.url) as conn:
        await conn.execute(f"INSERT INTO {table} VALUES (1, 'x')")
        await conn.commit()
        cur = await conn.execute(f"SELECT v FROM {table}")
        assert await cur.fetchall() == [("x",)]
        execute(server.url, f"INSERT INTO {table} VALUES (2, 'y')")
        result = await conn.sync()
        assert result.applied_index == conn.replica_index
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        assert await cur.fetchone() == (2,)


def test_offline_replicas_converge_under_each_policy(tmp_path: Path, server: ServerProcess,
                                                     table: str) -> None:
    """Two offline replicas edit the same notes; after both sync (and sync again) both
    equal the server, and the winner is the policy's."""
    expectations = {
        # policy: (content of note 1 after A then B push, where A wrote v2 and B v3,
        #          B's edit being the later one in time)
        "server-wins": "A",  # A's push applied first (no conflict); B's conflicts: dropped
        "client-wins": "B",  # B's conflicting push replaces
        "last-writer-wins": "B",  # B wrote later (its clock is higher)
        "max-version:version": "B",  # B set version 3 > A's 2
        "reject": "A",  # B's change goes to _edgelite_conflicts
    }
    for n, (policy, winner) in enumerate(expectations.items()):
        name = f"{table}_{n}"
        execute(server.url, f"CREATE TABLE {name}(id INTEGER PRIMARY KEY, content TEXT, "
                            "version INTEGER)", f"INSERT INTO {name} VALUES (1, 'base', 1)")
        set_policy(server.admin_url, name, policy)
        a = replica(tmp_path / f"a{n}.db", server, offline=True)
        b = replica(tmp_path / f"b{n}.db", server, offline=True)
        a.execute(f"UPDATE {name} SET content = 'A', version = 2 WHERE id = 1")
        a.commit()
        time.sleep(0.002)  # B's edit is the later one, by the wall clock its HLC reads
        b.execute(f"UPDATE {name} SET content = 'B', version = 3 WHERE id = 1")
        b.commit()
        a.sync()
        b.sync()
        a.sync()
        expected = query(server.url, f"SELECT content FROM {name}")
        assert expected == [(winner,)], policy
        for conn in (a, b):
            assert conn.execute(f"SELECT content FROM {name}").fetchall() == expected, policy
        if policy == "reject":
            recorded = b.execute("SELECT table_name, op FROM _edgelite_conflicts "
                                 "WHERE table_name = ?", (name,)).fetchall()
            assert recorded == [(name, "update")]
        a.close()
        b.close()


def test_copying_a_replica_file_keeps_working(tmp_path: Path, server: ServerProcess,
                                              table: str) -> None:
    execute(server.url, f"CREATE TABLE {table}(id INTEGER PRIMARY KEY)")
    replica(tmp_path / "r.db", server).close()
    shutil.copyfile(tmp_path / "r.db", tmp_path / "copy.db")
    execute(server.url, f"INSERT INTO {table} VALUES (1)")
    conn = replica(tmp_path / "copy.db", server)
    conn.sync()
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
    conn.close()


SHORT_RETENTION = {"EDGELITE_SNAPSHOT_ENTRIES": "10", "EDGELITE_SNAPSHOT_TRAILING_ENTRIES": "0",
                   "EDGELITE_RETAIN_ENTRIES": "5", "EDGELITE_RETAIN_BYTES": "0"}


def test_replicas_behind_retention_bootstrap_again(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A replica whose position the server no longer retains takes a new snapshot, and
    an offline one keeps its unpushed writes through it."""
    server = start_server(tmp_path / "server", env=SHORT_RETENTION, name="short", admin=True)
    try:
        execute(server.url, "CREATE TABLE old(id INTEGER PRIMARY KEY, origin TEXT)")
        online = replica(tmp_path / "online.db", server)
        offline = replica(tmp_path / "offline.db", server, offline=True)
        offline.execute("INSERT INTO old VALUES (1000, 'offline')")
        offline.commit()
        for i in range(60):
            execute(server.url, f"INSERT INTO old VALUES ({i}, 'server')")
        # Pulling from where they are is no longer possible: both bootstrap again.
        with caplog.at_level(logging.WARNING, logger="edgelite.replica.replicator"):
            online.sync()
        assert "no longer retained" in caplog.text
        assert online.execute("SELECT count(*) FROM old").fetchone() == (60,)
        replicator = offline._transport.replicator
        replicator.wait_applied(replicator.applied_index + 1, 30)  # pull first, push later
        assert offline.execute("SELECT count(*) FROM old").fetchone() == (61,)
        assert offline.sync().pending == 0
        assert query(server.url, "SELECT count(*) FROM old") == [(61,)]
        online.sync()
        assert online.execute("SELECT origin FROM old WHERE id = 1000").fetchone() == (
            "offline",)
        online.close()
        offline.close()
        assert file_hash(tmp_path / "online.db") == content_hash(server.admin_url)
    finally:
        server.stop()
