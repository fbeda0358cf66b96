"""Start-up recovery: torn tails are cut, every other kind of damage stops the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgelite.errors import StorageCorruptionError
from edgelite.raft.types import ConfState, HardState, SnapshotMeta
from edgelite.storage.raftlog.records import (
    RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
    encode_entry,
    encode_segment_header,
)
from edgelite.storage.raftlog.segments import segment_path

from .helpers import (
    check_payloads,
    entries,
    entry,
    flip_bit,
    open_store,
    record_offsets,
    segment_files,
    truncate,
)

CONF = ConfState(frozenset({"a"}))


def build(directory: Path, last: int = 10, commit: int = 5, tail: int = 3,
          **kwargs: int) -> None:
    """Entries 1..last at term 1 (commit ``commit``), then ``tail`` more in one batch."""
    store = open_store(directory, **kwargs)
    store.append(entries(1, last, 1))
    store.set_hard_state(HardState(1, "a", commit))
    store.sync()
    if tail:
        store.append(entries(last + 1, last + tail, 1, size=40))
    store.close()


def reopen_all(directory: Path) -> tuple[int, int, list[str]]:
    store = open_store(directory)
    try:
        found = store.entries(store.first_index(), store.last_index() + 1, 1 << 30)
        check_payloads(found)
        assert [e.index for e in found] == list(range(1, store.last_index() + 1))
        return store.last_index(), store.initial_state()[0].commit, list(store.repairs)
    finally:
        store.close()


def test_torn_tail_cut_at_every_byte_keeps_exactly_the_complete_records(
        fast_path: Path) -> None:
    tmp_path = fast_path
    original = tmp_path / "original"
    build(original)
    [path] = segment_files(original)
    tail_records = record_offsets(path)[-3:]
    start, end = tail_records[0][0], path.stat().st_size
    for cut in range(start, end):
        work = tmp_path / f"cut-{cut}"
        shutil.copytree(original, work)
        truncate(segment_path(work, 1), cut)
        complete = sum(1 for offset, size in tail_records if offset + size <= cut)
        last, commit, repairs = reopen_all(work)
        assert (last, commit) == (10 + complete, 5), cut
        on_boundary = any(offset == cut for offset, _ in tail_records)
        assert bool(repairs) != on_boundary, (cut, repairs)
        # The cut was made durable: the log keeps working where the torn record was.
        store = open_store(work)
        store.append(entries(last + 1, 14, 2))
        store.close()
        assert reopen_all(work) == (14, 5, [])
        shutil.rmtree(work)


def test_torn_tail_at_or_below_commit_raises(tmp_path: Path) -> None:
    build(tmp_path, commit=10, tail=0)
    path = segment_files(tmp_path)[-1]
    offset, size = record_offsets(path)[-2]  # entry 10, committed (then a COMMIT record)
    truncate(path, offset + size - 1)
    with pytest.raises(StorageCorruptionError, match=rf"{path}.*offset {offset}.*commit"):
        open_store(tmp_path)


def test_damage_in_an_older_segment_raises(tmp_path: Path) -> None:
    build(tmp_path, last=200, commit=20, tail=3)
    paths = segment_files(tmp_path)
    assert len(paths) >= 3
    offset, size = record_offsets(paths[1])[2]
    flip_bit(paths[1], offset + size - 1)
    with pytest.raises(StorageCorruptionError, match=rf"{paths[1]} offset {offset}"):
        open_store(tmp_path)


def test_damage_followed_by_intact_records_raises_even_above_commit(tmp_path: Path) -> None:
    build(tmp_path, commit=2, tail=3)
    [path] = segment_files(tmp_path)
    offset, _ = record_offsets(path)[-2]  # not the last record, and above commit
    flip_bit(path, offset + RECORD_HEADER_BYTES + 3)
    with pytest.raises(StorageCorruptionError, match=rf"offset {offset}.*intact record"):
        open_store(tmp_path)


def test_every_single_bit_flip_is_detected(fast_path: Path) -> None:
    """Any flipped bit in a segment either stops the store or (last record, above the
    commit index) is cut off and reported; damaged data is never served."""
    tmp_path = fast_path
    original = tmp_path / "original"
    build(original, last=4, commit=3, tail=2)
    [path] = segment_files(original)
    size = path.stat().st_size
    stopped = cut = 0
    for position in range(size):
        work = tmp_path / "work"
        shutil.copytree(original, work)
        flip_bit(segment_path(work, 1), position, position % 8)
        try:
            last, commit, repairs = reopen_all(work)
        except StorageCorruptionError:
            stopped += 1
        else:
            assert repairs and last < 6 and commit == 3, (position, last, repairs)
            cut += 1
        shutil.rmtree(work)
    last_record_offset = record_offsets(path)[-1][0]
    assert cut == size - last_record_offset  # exactly the flips inside the last record
    assert stopped == last_record_offset


def test_every_state_file_bit_flip_stops_the_store(fast_path: Path) -> None:
    tmp_path = fast_path
    original = tmp_path / "original"
    build(original)
    size = (original / "state").stat().st_size
    for position in range(size):
        work = tmp_path / "work"
        shutil.copytree(original, work)
        flip_bit(work / "state", position, 7 - position % 8)
        with pytest.raises(StorageCorruptionError, match="state"):
            open_store(work)
        shutil.rmtree(work)


def test_missing_segments_raise(tmp_path: Path) -> None:
    build(tmp_path, last=200, commit=200, tail=0)
    paths = segment_files(tmp_path)
    middle = tmp_path / "middle"
    shutil.copytree(tmp_path, middle)
    segment_path(middle, 2).unlink()
    with pytest.raises(StorageCorruptionError, match=r"0000000000000002\.seg.*missing"):
        open_store(middle)
    # Losing the newest segment loses committed entries: also refused.
    paths[-1].unlink()
    with pytest.raises(StorageCorruptionError, match="below the durable commit index"):
        open_store(tmp_path)


def test_torn_segment_header_is_removed_and_its_seq_reused(tmp_path: Path) -> None:
    build(tmp_path, tail=0)
    next_seq = len(segment_files(tmp_path)) + 1
    segment_path(tmp_path, next_seq).write_bytes(encode_segment_header(next_seq)[:10])
    last, _, repairs = reopen_all(tmp_path)
    assert last == 10 and "torn segment" in repairs[0]
    assert not segment_path(tmp_path, next_seq).exists()
    store = open_store(tmp_path, segment_bytes_max=4096)
    store.append(entries(11, 200, 1))
    store.close()
    assert segment_path(tmp_path, next_seq).exists()
    assert reopen_all(tmp_path)[0] == 200


def test_damaged_header_of_an_older_segment_raises(tmp_path: Path) -> None:
    build(tmp_path, last=200, commit=100)
    flip_bit(segment_path(tmp_path, 1), 3)
    with pytest.raises(StorageCorruptionError, match=r"0000000000000001\.seg offset 0"):
        open_store(tmp_path)


def _append_raw(directory: Path, record: bytes) -> None:
    path = segment_files(directory)[-1]
    with open(path, "ab") as handle:
        handle.write(record)


@pytest.mark.parametrize(("record", "message"), [
    (encode_entry(entry(3, 1)), "at or below the commit index"),
    (encode_entry(entry(13, 1)), "gap after 10"),
    (encode_entry(entry(11, 1)), None),  # a plausible next entry is fine
])
def test_intact_but_impossible_records_raise(tmp_path: Path, record: bytes,
                                             message: str | None) -> None:
    build(tmp_path, tail=0)
    _append_raw(tmp_path, record)
    if message is None:
        assert reopen_all(tmp_path)[0] == 11
    else:
        with pytest.raises(StorageCorruptionError, match=message):
            open_store(tmp_path)


def test_decreasing_term_raises(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.append(entries(1, 5, 3))
    store.close()
    _append_raw(tmp_path, encode_entry(entry(6, 2)))
    with pytest.raises(StorageCorruptionError, match="term 2 after term 3"):
        open_store(tmp_path)


def test_segments_left_behind_by_an_interrupted_compaction_are_ignored(
        tmp_path: Path) -> None:
    build(tmp_path, last=300, commit=300, tail=0)
    saved = {path.name: path.read_bytes() for path in segment_files(tmp_path)}
    store = open_store(tmp_path)
    store.create_snapshot(SnapshotMeta(250, 1, CONF, 0, "s"))
    store.compact(250)
    store.close()
    kept = {path.name for path in segment_files(tmp_path)}
    assert 0 < len(kept) < len(saved)
    for name, data in saved.items():  # the deletions "did not reach the disk"
        if name not in kept:
            (tmp_path / name).write_bytes(data)
    store = open_store(tmp_path)
    assert (store.first_index(), store.last_index()) == (251, 300)
    check_payloads(store.entries(251, 301, 1 << 30))
    store.close()
    assert {path.name for path in segment_files(tmp_path)} == kept


def test_log_left_behind_by_an_interrupted_snapshot_install_is_ignored(
        tmp_path: Path) -> None:
    build(tmp_path, last=50, commit=20, tail=0)
    saved = {path.name: path.read_bytes() for path in segment_files(tmp_path)}
    store = open_store(tmp_path)
    store.apply_snapshot(SnapshotMeta(40, 2, CONF, 0, "remote"))
    store.close()
    for name, data in saved.items():
        (tmp_path / name).write_bytes(data)
    store = open_store(tmp_path)
    assert (store.first_index(), store.last_index(), store.term(40)) == (41, 40, 2)
    store.append(entries(41, 45, 2))
    store.close()
    assert reopen_all_after(tmp_path, 41) == 45


def reopen_all_after(directory: Path, first: int) -> int:
    store = open_store(directory)
    try:
        check_payloads(store.entries(first, store.last_index() + 1, 1 << 30))
        return store.last_index()
    finally:
        store.close()


def test_leftover_state_temp_file_is_ignored(tmp_path: Path) -> None:
    build(tmp_path)
    (tmp_path / "state.tmp").write_bytes(b"half written")
    assert reopen_all(tmp_path)[:2] == (13, 5)
    assert not (tmp_path / "state.tmp").exists()


def test_segment_header_size_is_what_the_format_says() -> None:
    assert len(encode_segment_header(1)) == SEGMENT_HEADER_BYTES == 24
