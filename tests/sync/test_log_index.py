"""The per-database index of the Raft log (cluster/log_index.py): availability of sync
positions across compaction and snapshot installs, and the retention window."""

from __future__ import annotations

import pytest

from edgelite.cluster.commands import CatalogCommand, WriteCommand, encode_command
from edgelite.cluster.log_index import EntryIndex, Retention
from edgelite.raft import Entry, EntryKind, SnapshotMeta
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import ConfState, HardState


def write(index: int, database: str, size: int = 10, at_ms: int = 0) -> Entry:
    command = WriteCommand(database, b"x" * size, (), "n1", at_ms)
    return Entry(1, index, EntryKind.NORMAL, encode_command(command))


def build(entries: list[Entry]) -> MemoryStorage:
    log = MemoryStorage()
    log.append(entries)
    log.set_hard_state(HardState(1, "", entries[-1].index))
    return log


def compact(log: MemoryStorage, through: int) -> None:
    log.create_snapshot(SnapshotMeta(index=through, term=1, conf_state=ConfState(),
                                     size_bytes=0, id=f"s{through}"))
    log.compact(through)


def test_entries_are_found_per_database_in_order() -> None:
    log = build([write(1, "a"), write(2, "b"), Entry(1, 3, EntryKind.NOOP),
                 Entry(1, 4, EntryKind.NORMAL, encode_command(CatalogCommand("create", "c"))),
                 write(5, "a"), write(6, "a")])
    index = EntryIndex(log)
    index.catch_up(6)
    assert index.entries_after("a", 0, 10) == [1, 5, 6]
    assert index.entries_after("a", 1, 10) == [5, 6]
    assert index.entries_after("a", 5, 1) == [6]
    assert index.entries_after("b", 2, 10) == []
    assert index.entries_after("zzz", 0, 10) == []
    assert index.available("a", 0) and index.retained_from("a") == 0


def test_catching_up_stops_at_the_applied_index_and_resumes() -> None:
    log = build([write(i, "a") for i in range(1, 11)])
    index = EntryIndex(log)
    index.catch_up(4)
    assert index.entries_after("a", 0, 100) == [1, 2, 3, 4]
    index.catch_up(10)
    assert index.entries_after("a", 0, 100) == list(range(1, 11))


def test_compaction_keeps_positions_of_databases_that_lost_no_entry() -> None:
    log = build([write(1, "busy"), write(2, "idle"), *(write(i, "busy") for i in range(3, 21))])
    index = EntryIndex(log)
    index.catch_up(20)
    compact(log, 15)
    index.catch_up(20)
    # "busy" lost entries 1..15: only positions from 15 on are complete.
    assert not index.available("busy", 14)
    assert index.available("busy", 15)
    assert index.retained_from("busy") == 15
    # "idle" lost only entry 2, so any position from 2 on still has everything after it.
    assert index.available("idle", 2) and not index.available("idle", 1)
    assert index.entries_after("busy", 15, 100) == [16, 17, 18, 19, 20]


def test_an_index_built_after_compaction_knows_nothing_older() -> None:
    log = build([write(i, "a") for i in range(1, 11)])
    compact(log, 6)
    index = EntryIndex(log)
    index.catch_up(10)
    assert index.complete_from == 7
    assert not index.available("a", 5) and index.available("a", 6)
    assert not index.available("never-written", 5)


def test_a_snapshot_install_past_the_scan_resets_the_index() -> None:
    log = build([write(i, "a") for i in range(1, 6)])
    index = EntryIndex(log)
    index.catch_up(5)
    installed = MemoryStorage()
    installed.apply_snapshot(SnapshotMeta(index=40, term=2, conf_state=ConfState(),
                                          size_bytes=0, id="leader-40"))
    installed.append([write(i, "a") for i in range(41, 44)])
    installed.set_hard_state(HardState(2, "", 43))
    index.log = installed
    index.catch_up(43)
    assert index.complete_from == 41
    assert not index.available("a", 5)
    assert index.entries_after("a", 40, 10) == [41, 42, 43]


@pytest.mark.parametrize(("entries", "entry_bytes", "age_s", "floor"), [
    (0, 0, 0, 100),
    (30, 0, 0, 70),
    (0, 25, 0, 75),  # the newest 25 entries hold the bytes asked for
    (10, 25, 0, 75),
    (0, 0, 20, 79),  # entries at most 20 s old: 80..100
    (50, 10, 20, 50),
    (500, 0, 0, 0),
])
def test_the_retention_window_is_the_union_of_its_guarantees(entries: int, entry_bytes: int,
                                                            age_s: float, floor: int) -> None:
    now_ms = 1_000_000
    log = build([write(i, "a", size=10, at_ms=now_ms - (100 - i) * 1000)
                 for i in range(1, 101)])
    size = len(log.entries(1, 2, 1 << 30)[0].data)
    index = EntryIndex(log)
    index.catch_up(100)
    retention = Retention(entries, entry_bytes * size, age_s)
    assert index.compaction_floor(retention, 100, now_ms) == floor
    if entry_bytes:  # one byte more needs one entry more
        bigger = Retention(entries, entry_bytes * size + 1, age_s)
        assert index.compaction_floor(bigger, 100, now_ms) == min(floor, 99 - entry_bytes)


def test_retained_reports_bytes_and_the_oldest_write() -> None:
    log = build([Entry(1, 1, EntryKind.NOOP), write(2, "a", 100, 5000), write(3, "a", 50, 6000)])
    index = EntryIndex(log)
    index.catch_up(3)
    retained = index.retained()
    assert (retained.first_index, retained.oldest_committed_at_ms) == (1, 5000)
    assert retained.bytes == sum(len(e.data) for e in log.entries(1, 4, 1 << 30))
    assert index.committed_at_ms(3) == 6000 and index.committed_at_ms(99) == 0
