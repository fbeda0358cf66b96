"""SnapshotStore: create/finalize, chunked reads, resumable verified receives, retention,
and damage detection."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgelite.errors import StorageCorruptionError, StorageError
from edgelite.raft.types import ConfState, SnapshotMeta
from edgelite.storage.raftlog import SnapshotStore

from .helpers import flip_bit

CONF = ConfState(frozenset({"a", "b"}), frozenset({"l"}))
FILES = {
    "main.db": os.urandom(300_000),
    "catalog.db": b"catalog" * 1000,
    "empty.db": b"",
}


def make_snapshot(store: SnapshotStore, index: int = 42, files: dict[str, bytes] = FILES,
                  snapshot_id: str | None = None) -> SnapshotMeta:
    meta = SnapshotMeta(index, 3, CONF, 0, snapshot_id or f"n1@{index}")
    with store.create(meta) as writer:
        for name, data in files.items():
            writer.path(name).write_bytes(data)
        return writer.finalize()


def stream_of(store: SnapshotStore, meta: SnapshotMeta, chunk_bytes: int) -> list[bytes]:
    return [store.read_chunk(meta.id, offset, min(chunk_bytes, meta.size_bytes - offset))
            for offset in range(0, meta.size_bytes, chunk_bytes)]


def receive_all(store: SnapshotStore, meta: SnapshotMeta, chunks: list[bytes]) -> SnapshotMeta:
    offset = store.begin_receive(meta)
    position = 0
    for chunk in chunks:
        if position >= offset:
            store.write_chunk(meta.id, position, chunk)
        position += len(chunk)
    return store.finish_receive(meta.id)


def files_of(store: SnapshotStore, snapshot_id: str) -> dict[str, bytes]:
    snapshot = store.open(snapshot_id)
    return {item.name: snapshot.path(item.name).read_bytes() for item in snapshot.files}


def test_round_trip_through_chunks(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    meta = make_snapshot(leader)
    assert meta.size_bytes > sum(len(data) for data in FILES.values())  # + manifest
    assert leader.latest() == meta
    leader.verify(meta.id)
    rng = random.Random(1)
    for _ in range(20):  # any range of the stream is the same bytes
        offset = rng.randrange(meta.size_bytes)
        length = rng.randrange(meta.size_bytes - offset + 1)
        assert leader.read_chunk(meta.id, offset, length) == \
            b"".join(stream_of(leader, meta, 4096))[offset : offset + length]
    follower = SnapshotStore(tmp_path / "follower")
    assert receive_all(follower, meta, stream_of(leader, meta, 65536)) == meta
    assert files_of(follower, meta.id) == FILES
    follower.close()
    reopened = SnapshotStore(tmp_path / "follower")
    assert reopened.latest() == meta and files_of(reopened, meta.id) == FILES
    reopened.verify(meta.id)
    with pytest.raises(ValueError):
        leader.read_chunk(meta.id, meta.size_bytes - 1, 2)


def test_receive_resumes_after_a_restart(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    meta = make_snapshot(leader)
    chunks = stream_of(leader, meta, 50_000)
    follower = SnapshotStore(tmp_path / "follower")
    assert follower.begin_receive(meta) == 0
    for position, chunk in zip(range(0, 150_000, 50_000), chunks[:3], strict=True):
        follower.write_chunk(meta.id, position, chunk)
    follower.close()  # crash
    follower = SnapshotStore(tmp_path / "follower")
    with pytest.raises(ValueError):
        follower.received_bytes(meta.id)  # unknown until the leader announces it again
    assert follower.begin_receive(meta) == 150_000
    assert follower.received_bytes(meta.id) == 150_000
    assert receive_all(follower, meta, chunks) == meta
    assert files_of(follower, meta.id) == FILES


def test_resume_drops_a_torn_last_chunk(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    meta = make_snapshot(leader)
    chunks = stream_of(leader, meta, 40_000)
    follower = SnapshotStore(tmp_path / "follower")
    follower.begin_receive(meta)
    for position, chunk in zip(range(0, 120_000, 40_000), chunks[:3], strict=True):
        follower.write_chunk(meta.id, position, chunk)
    follower.close()
    receiving = tmp_path / "follower" / f".recv-{meta.id}"
    flip_bit(receiving / "stream.part", 100_000)  # inside the third chunk
    with open(receiving / "progress", "ab") as progress:
        progress.write(b"\x01\x02\x03")  # and a torn progress record after it
    follower = SnapshotStore(tmp_path / "follower")
    assert follower.begin_receive(meta) == 80_000
    assert receive_all(follower, meta, chunks) == meta
    assert files_of(follower, meta.id) == FILES


def test_sender_restarts_and_offsets_are_checked(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    meta = make_snapshot(leader)
    chunks = stream_of(leader, meta, 30_000)
    follower = SnapshotStore(tmp_path / "follower")
    follower.begin_receive(meta)
    follower.write_chunk(meta.id, 0, chunks[0])
    follower.write_chunk(meta.id, 30_000, chunks[1])
    with pytest.raises(ValueError, match="not a chunk boundary"):
        follower.write_chunk(meta.id, 90_000, chunks[3])  # a gap
    with pytest.raises(ValueError, match="not a chunk boundary"):
        follower.write_chunk(meta.id, 10_000, chunks[1])
    follower.write_chunk(meta.id, 30_000, chunks[1])  # a resend of the last chunk
    assert follower.received_bytes(meta.id) == 60_000
    follower.write_chunk(meta.id, 0, chunks[0])  # the leader starts over
    assert follower.received_bytes(meta.id) == 30_000
    with pytest.raises(ValueError, match="received"):
        follower.finish_receive(meta.id)
    assert receive_all(follower, meta, chunks) == meta


def test_a_damaged_transfer_is_detected_and_discarded(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    meta = make_snapshot(leader)
    chunks = stream_of(leader, meta, 100_000)
    damaged = bytearray(chunks[1])
    damaged[5] ^= 0x40
    follower = SnapshotStore(tmp_path / "follower")
    with pytest.raises(StorageCorruptionError, match=r"main\.db has crc32c"):
        receive_all(follower, meta, [chunks[0], bytes(damaged), *chunks[2:]])
    with pytest.raises(ValueError):
        follower.received_bytes(meta.id)
    assert follower.latest() is None
    assert receive_all(follower, meta, chunks) == meta  # a clean retry from 0 works


def test_a_stream_that_is_not_the_announced_snapshot_is_refused(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    meta = make_snapshot(leader)
    chunks = stream_of(leader, meta, 100_000)
    follower = SnapshotStore(tmp_path / "follower")
    wrong = SnapshotMeta(meta.index + 1, meta.term, meta.conf_state, meta.size_bytes, meta.id)
    with pytest.raises(StorageCorruptionError, match="announced"):
        receive_all(follower, wrong, chunks)
    with pytest.raises(StorageCorruptionError, match="manifest"):
        receive_all(follower, meta, [b"\x00" * len(chunks[0]), *chunks[1:]])


def test_damage_in_a_finished_snapshot_is_detected(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    meta = make_snapshot(store)
    flip_bit(store.open(meta.id).path("catalog.db"), 17)
    with pytest.raises(StorageCorruptionError, match=r"catalog\.db"):
        store.verify(meta.id)
    store.close()
    flip_bit(tmp_path / f"snap-{meta.id}" / "MANIFEST", 30)
    with pytest.raises(StorageCorruptionError, match="MANIFEST"):
        SnapshotStore(tmp_path)


def test_retention_keeps_the_newest_and_the_protected(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, retain_count=2)
    metas = [make_snapshot(store, index, {"f": bytes([index])}) for index in (10, 20, 30, 40)]
    assert store.prune(keep={metas[0].id}) == [metas[1].id]
    assert [meta.index for meta in store.snapshots()] == [10, 30, 40]
    assert store.latest() == metas[3]
    store.delete(metas[0].id)
    with pytest.raises(StorageError, match="not found"):
        store.read_chunk(metas[0].id, 0, 1)
    store.close()
    assert [m.index for m in SnapshotStore(tmp_path).snapshots()] == [30, 40]


def test_unfinished_work_is_removed_at_open(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    meta = SnapshotMeta(5, 1, CONF, 0, "half")
    writer = store.create(meta)
    writer.add_bytes("a.db", b"x" * 100)
    with pytest.raises(RuntimeError), store.create(SnapshotMeta(6, 1, CONF, 0, "boom")) as w:
        w.add_bytes("b.db", b"y")
        raise RuntimeError("backup failed")
    assert not (tmp_path / ".build-boom").exists()
    store.close()  # "crash" with .build-half left behind
    (tmp_path / ".trash-old").mkdir()
    store = SnapshotStore(tmp_path)
    assert store.latest() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LOCK"]
    with pytest.raises(StorageError, match="in use"):
        SnapshotStore(tmp_path)
    with pytest.raises(ValueError):
        store.create(SnapshotMeta(7, 1, CONF, 0, "../escape"))
    writer = store.create(SnapshotMeta(7, 1, CONF, 0, "ok"))
    for reserved in ("MANIFEST", "progress", "stream.part", "../x", ".hidden"):
        with pytest.raises(ValueError):
            writer.path(reserved)


WRITER = """
import sys
from pathlib import Path
from edgelite.raft.types import ConfState, SnapshotMeta
from edgelite.storage.raftlog import SnapshotStore
store = SnapshotStore(Path(sys.argv[1]), retain_count=2)
index = max([m.index for m in store.snapshots()], default=0)
while True:
    index += 1
    with store.create(SnapshotMeta(index, 1, ConfState(frozenset("a")), 0, f"s{index}")) as w:
        for name in ("a.db", "b.db"):
            w.add_bytes(name, bytes([index % 251]) * 400_000)
        w.finalize()
    store.prune()
    print(index, flush=True)
"""


def test_sigkill_during_snapshot_writes_leaves_only_whole_snapshots(tmp_path: Path) -> None:
    rng = random.Random(5)
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None and process.stdout.readline()
            time.sleep(rng.uniform(0, 0.2))
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=60)
        store = SnapshotStore(tmp_path, retain_count=2)
        assert store.snapshots()
        for meta in store.snapshots():
            store.verify(meta.id)
            assert files_of(store, meta.id) == {
                name: bytes([meta.index % 251]) * 400_000 for name in ("a.db", "b.db")}
        store.close()
    shutil.rmtree(tmp_path)
