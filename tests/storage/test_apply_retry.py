"""A committed entry the environment refuses (disk full) is applied again until it
succeeds, in order, never declared diverged; a database closed meanwhile says so."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edgelite.errors import DatabaseClosedError
from edgelite.storage import effects
from edgelite.storage.database import Database, DatabaseConfig

from .conftest import Node, dump_database

WAIT_S = 20.0


class _Applied:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: tuple[int, BaseException | None] | None = None

    def __call__(self, index: int, error: BaseException | None) -> None:
        self.result = (index, error)
        self.event.set()


def _leader_effects(node: Node) -> list[tuple[int, bytes]]:
    session = node.session()
    node.execute(session, "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    node.execute(session, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                          "WHERE i < 50) INSERT INTO t(v) SELECT randomblob(4000) FROM n")
    return [(index, effects.encode_effect(effect)) for index, effect in node.step.commits]


def _full_disk(database: Database) -> None:
    """The applier may not grow the file: any page it adds fails with SQLITE_FULL."""
    connection = database.writer.applier.connection
    pages = connection.execute("PRAGMA page_count").fetchall()[0][0]
    connection.execute(f"PRAGMA max_page_count={pages}")


def _space_again(database: Database) -> None:
    database.writer.applier.connection.execute("PRAGMA max_page_count=1073741823")


def _stalled(database: Database) -> bool:
    deadline = threading.Event()
    for _ in range(400):
        if database.writer.apply_stalled_since is not None:
            return True
        deadline.wait(0.025)
    return False


def test_an_apply_refused_by_a_full_disk_waits_and_then_succeeds(node: Node,
                                                                 tmp_path: Path) -> None:
    (create_index, create), (insert_index, insert) = _leader_effects(node)
    follower = Database("follower", tmp_path / "follower.db", DatabaseConfig())
    try:
        first = _Applied()
        follower.submit_apply(create_index, create, (), first)
        assert first.event.wait(WAIT_S) and first.result == (create_index, None)
        _full_disk(follower)
        second = _Applied()
        follower.submit_apply(insert_index, insert, ("req-1",), second)
        assert _stalled(follower), "the apply never hit the full disk"
        assert not second.event.is_set(), "a refused apply must wait, not fail"
        _space_again(follower)
        assert second.event.wait(WAIT_S) and second.result == (insert_index, None)
        assert follower.writer.apply_stalled_since is None
        assert follower.applied_index == insert_index
        assert follower.request_applied_at("req-1") == insert_index
    finally:
        follower.close()
    leader_rows = dump_database(node.path)["table:t"]
    assert len(leader_rows) == 50
    assert dump_database(tmp_path / "follower.db")["table:t"] == leader_rows


def test_closing_a_database_ends_a_waiting_apply_with_database_closed(
        node: Node, tmp_path: Path) -> None:
    (create_index, create), (insert_index, insert) = _leader_effects(node)
    follower = Database("follower", tmp_path / "follower.db", DatabaseConfig())
    first = _Applied()
    follower.submit_apply(create_index, create, (), first)
    assert first.event.wait(WAIT_S)
    _full_disk(follower)
    waiting = _Applied()
    follower.submit_apply(insert_index, insert, (), waiting)
    assert _stalled(follower)
    follower.close()
    assert waiting.event.wait(WAIT_S)
    index, error = waiting.result or (0, None)
    assert index == insert_index and isinstance(error, DatabaseClosedError)
    with pytest.raises(DatabaseClosedError):
        follower.submit_apply(insert_index + 1, insert, (), _Applied())
