"""Child process of the crash tests: writes a Raft log like a busy node, forever.

Usage: ``crash_writer.py DIRECTORY SEED [MODE]``. It resumes whatever log DIRECTORY
holds, then loops: append (sometimes replacing an uncommitted suffix under a new term,
sometimes with batches of hundreds of KiB so that a kill can tear a write), advance the
commit index, now and then snapshot + compact, ``sync()``, and only then print
``ACK last commit term_at_commit`` (a suffix replacement is announced first with
``REPLACE start``). The parent kills it with SIGKILL at a random moment
and checks that every acknowledged state survived.

MODE ``expect-sync-failure`` (run under libfiu with fdatasync failing): append, sync
once; print ``REFUSED <message>`` for the StorageError it must get and for every later
call, or ``ACK`` if the sync wrongly succeeded.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from edgelite.errors import StorageError
from edgelite.raft.types import ConfState, HardState, SnapshotMeta
from edgelite.storage.raftlog import RaftLogStore

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.storage.raftlog.helpers import entries

CONF = ConfState(frozenset({"a"}))


def busy_node(directory: Path, rng: random.Random) -> None:
    store = RaftLogStore.open(directory, segment_bytes_max=256 << 10, cache_bytes_max=1 << 20)
    term = max(store.hard_state.term, store.term(store.last_index()), 1)
    while True:
        last, commit = store.last_index(), store.hard_state.commit
        size = rng.choice([None, None, 2000, 150_000])
        if rng.random() < 0.15 and last - 2 > commit:
            # A new leader replaces an uncommitted suffix. Announced first: until the
            # append is complete, the log may legitimately be shorter than acknowledged.
            term, start = term + 1, rng.randint(commit + 1, last)
            print(f"REPLACE {start}", flush=True)
            store.append(entries(start, last + rng.randint(0, 5), term, size))
        else:
            store.append(entries(last + 1, last + rng.randint(1, 20), term, size))
        commit = rng.randint(commit, max(commit, store.last_index() - 3))
        store.set_hard_state(HardState(term, "a", commit))
        snapshot = store.snapshot_meta()
        if rng.random() < 0.05 and commit > (snapshot.index if snapshot else 0):
            store.create_snapshot(SnapshotMeta(commit, store.term(commit), CONF, 0, f"s{commit}"))
            store.compact(rng.randint(store.first_index() - 1, commit))
        store.sync()
        print(f"ACK {store.last_index()} {commit} {store.term(commit)}", flush=True)


def expect_sync_failure(directory: Path) -> None:
    store = RaftLogStore.open(directory)
    store.append(entries(1, 10, 1))
    for call in (store.sync, store.sync, lambda: store.append(entries(11, 11, 1))):
        try:
            call()
        except StorageError as exc:
            print(f"REFUSED {exc}", flush=True)
        else:
            print("ACK", flush=True)


def main() -> None:
    directory, seed = Path(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "expect-sync-failure":
        expect_sync_failure(directory)
    else:
        busy_node(directory, random.Random(seed))


if __name__ == "__main__":
    main()
