"""RaftLogStore behaviour beyond the shared contract: segments, truncation across them,
compaction on disk, the cache, syncing, threads, and failures that stop the store."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgelite.errors import DiskFullError, StorageCorruptionError, StorageError
from edgelite.raft.errors import CompactedError, UnavailableError
from edgelite.raft.types import ConfState, Entry, HardState, SnapshotMeta
from edgelite.storage.raftlog import RaftLogStore, fsio

from .helpers import (
    check_payloads,
    entries,
    flip_bit,
    open_store,
    record_offsets,
    segment_files,
)

CONF = ConfState(frozenset({"a", "b"}))


def read_all(store: RaftLogStore) -> list[Entry]:
    found = store.entries(store.first_index(), store.last_index() + 1, 1 << 30)
    check_payloads(found)
    return found


def test_segments_roll_over_at_the_size_bound(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.append(entries(1, 300, 1, size=100))
    store.close()
    paths = segment_files(tmp_path)
    assert len(paths) > 5
    assert all(path.stat().st_size <= 4096 for path in paths)
    store = open_store(tmp_path)
    assert read_all(store) == entries(1, 300, 1, size=100)
    store.close()


def test_a_record_larger_than_a_segment_gets_its_own(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.append(entries(1, 2, 1, size=10) + entries(3, 3, 1, size=10_000) +
                 entries(4, 5, 1, size=10))
    store.close()
    sizes = [path.stat().st_size for path in segment_files(tmp_path)]
    assert len(sizes) == 3 and sizes[1] > 10_000
    with open_store(tmp_path) as store:
        assert [len(e.data) for e in read_all(store)] == [10, 10, 10_000, 10, 10]


def test_append_with_truncation_across_segments(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.append(entries(1, 200, 1, size=100))
    store.set_hard_state(HardState(1, None, 30))
    assert store.term(150) == 1
    store.append(entries(40, 60, 2, size=100))  # replaces 40..200, written in many segments
    assert store.last_index() == 60
    assert read_all(store) == entries(1, 39, 1, size=100) + entries(40, 60, 2, size=100)
    store.append(entries(61, 70, 2, size=100))
    store.close()
    with open_store(tmp_path) as store:
        assert read_all(store) == (entries(1, 39, 1, size=100) + entries(40, 70, 2, size=100))
        with pytest.raises(UnavailableError):
            store.term(71)


def test_identical_entries_are_not_rewritten(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.append(entries(1, 10, 1))
    size = segment_files(tmp_path)[-1].stat().st_size
    store.append(entries(3, 10, 1))  # a retransmission: nothing new
    assert segment_files(tmp_path)[-1].stat().st_size == size
    store.append(entries(3, 6, 1))  # ... but a shorter one still drops the suffix
    assert store.last_index() == 6
    store.close()
    with open_store(tmp_path) as store:
        assert store.last_index() == 6


def test_compaction_deletes_whole_segments_only(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.append(entries(1, 400, 1, size=100))
    store.set_hard_state(HardState(1, None, 400))
    before = len(segment_files(tmp_path))
    store.create_snapshot(SnapshotMeta(250, 1, CONF, 0, "s250"))
    store.compact(250)
    after = segment_files(tmp_path)
    assert 1 < len(after) < before
    assert store.first_index() == 251
    store.close()
    with open_store(tmp_path) as store:
        assert (store.first_index(), store.last_index(), store.term(250)) == (251, 400, 1)
        assert read_all(store) == entries(251, 400, 1, size=100)
        store.create_snapshot(SnapshotMeta(400, 1, CONF, 0, "s400"))
        store.compact(400)
        assert len(segment_files(tmp_path)) == 1  # the newest one is kept to append to
        store.append(entries(401, 405, 2))
    with open_store(tmp_path) as store:
        assert read_all(store) == entries(401, 405, 2)


def test_reads_beyond_the_cache_come_from_disk(tmp_path: Path) -> None:
    store = open_store(tmp_path, cache_bytes_max=2000)
    store.append(entries(1, 500, 1, size=100))
    assert store._cache.bytes_used <= 2000
    assert read_all(store) == entries(1, 500, 1, size=100)
    assert [e.index for e in store.entries(100, 500, 10 * 124)] == list(range(100, 110))
    store.close()


def test_damage_found_by_a_read_stops_the_store(tmp_path: Path) -> None:
    store = open_store(tmp_path, cache_bytes_max=0)
    store.append(entries(1, 20, 1, size=50))
    store.sync()
    path = segment_files(tmp_path)[-1]
    flip_bit(path, record_offsets(path)[5][0] + 30)  # entry 6, after it was checked
    assert read_all_from(store, 1, 5) == entries(1, 5, 1, size=50)
    with pytest.raises(StorageCorruptionError, match=rf"{path} offset"):
        store.entries(6, 7, 1 << 20)
    with pytest.raises(StorageError, match="failed earlier"):
        store.entries(1, 2, 1 << 20)
    store.close()
    with pytest.raises(StorageCorruptionError):
        open_store(tmp_path)


def read_all_from(store: RaftLogStore, lo: int, hi: int) -> list[Entry]:
    return store.entries(lo, hi + 1, 1 << 30)


def test_commit_only_changes_do_not_rewrite_the_state_file(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.append(entries(1, 10, 1))
    store.set_hard_state(HardState(1, "a", 2))
    store.sync()
    inode = (tmp_path / "state").stat().st_ino
    for commit in range(3, 11):
        store.set_hard_state(HardState(1, "a", commit))
        store.sync()
    assert (tmp_path / "state").stat().st_ino == inode  # commits went into the log
    store.set_hard_state(HardState(2, None, 10))
    store.sync()
    assert (tmp_path / "state").stat().st_ino != inode  # a new term is a new state file
    store.close()
    with open_store(tmp_path) as store:
        assert store.initial_state() == (HardState(2, None, 10), ConfState())


def test_conf_state_is_persisted(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.set_conf_state(CONF)
    with open_store(tmp_path) as store:
        assert store.initial_state() == (HardState(), CONF)


def test_one_process_at_a_time(tmp_path: Path) -> None:
    with open_store(tmp_path):
        code = ("import sys; from edgelite.storage.raftlog import RaftLogStore\n"
                "try:\n RaftLogStore.open(sys.argv[1])\n"
                "except Exception as exc: print(type(exc).__name__, exc)\n")
        result = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                                capture_output=True, text=True, timeout=60, check=True)
        assert result.stdout.startswith("StorageError") and "in use" in result.stdout


def test_a_failed_fdatasync_stops_the_store_for_good(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    store.append(entries(1, 5, 1))
    store.sync()
    store.append(entries(6, 8, 1))
    calls = []

    def failing(fd: int) -> None:
        calls.append(fd)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(fsio.os, "fdatasync", failing)
    with pytest.raises(StorageError, match="fdatasync"):
        store.sync()
    monkeypatch.undo()
    # Never retried: later calls fail without touching the disk, even once it "works".
    for call in (store.sync, lambda: store.append(entries(9, 9, 1)), store.last_index):
        with pytest.raises(StorageError, match="failed earlier"):
            call()
    assert len(calls) == 1
    store.close()
    with open_store(tmp_path) as store:  # reopening recovers from what is on disk
        assert store.last_index() >= 5


def test_reads_are_consistent_while_the_log_thread_writes(tmp_path: Path) -> None:
    store = open_store(tmp_path, cache_bytes_max=3000)
    store.append(entries(1, 50, 1))
    store.set_hard_state(HardState(1, None, 1))
    stop = threading.Event()
    problems: list[BaseException] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                first, last = store.first_index(), store.last_index()
                found = store.entries(first, last + 1, 1 << 20)
                check_payloads(found)
                assert [e.index for e in found] == list(range(first, first + len(found)))
                terms = [e.term for e in found]
                assert terms == sorted(terms)
                reads[0] += 1
            except (CompactedError, UnavailableError):
                pass  # the log moved between the two calls: expected
            except BaseException as exc:  # reported below
                problems.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        term, commit = 1, 1
        for step in range(300):
            last = store.last_index()
            if step % 7 == 6 and last - 5 > commit:
                term += 1
                store.append(entries(last - 5, last + 3, term))  # replace a suffix
            else:
                store.append(entries(last + 1, last + 8, term))
            commit = store.last_index() - 6
            store.set_hard_state(HardState(term, None, commit))
            if step % 10 == 0:
                store.sync()
            if step % 25 == 24:
                store.create_snapshot(SnapshotMeta(commit, store.term(commit), CONF))
                store.compact(commit - 3)
    finally:
        stop.set()
        thread.join()
    assert not problems, problems
    assert reads[0] > 0
    store.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_stops_the_store_and_synced_entries_survive(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                   check=True, timeout=30)
    try:
        store = open_store(mount / "log")
        synced = 0
        with pytest.raises(DiskFullError):
            for first in range(1, 10_000, 10):
                store.append(entries(first, first + 9, 1, size=1000))
                store.sync()
                synced = first + 9
        with pytest.raises(StorageError, match="failed earlier"):
            store.sync()
        store.close()
        with open_store(mount / "log") as reopened:
            assert reopened.last_index() >= synced > 0
            check_payloads(reopened.entries(1, synced + 1, 1 << 30))
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=30)
