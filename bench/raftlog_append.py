"""Appends and syncs per second of RaftLogStore, against a plain write + fdatasync loop.

Not a test: run ``python bench/raftlog_append.py [--syncs N] [--payload-bytes B]
[--dir PATH]``. The store does N rounds of "append K entries, set the commit index,
sync()" (K = 1 and K = 64) on a fresh store in a scratch directory on the same file
system; the baseline does N rounds of one ``os.write`` of the same bytes plus one
``os.fdatasync`` on a single file. Both run in alternating blocks of N/20 rounds, since
this machine's flush latency drifts by several times over a few seconds. The ratio
column is the store's syncs/s over the baseline's at the same K: what the store's
record framing, CRC32C, index, cache, commit records and segment handling cost on top
of the disk's own flush.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from edgelite.raft.types import Entry, HardState
from edgelite.storage.raftlog import RaftLogStore


class StoreRunner:
    """Rounds of append(K entries) + commit + sync() on one RaftLogStore."""

    def __init__(self, directory: Path, per_sync: int, payload: bytes) -> None:
        self.store = RaftLogStore.open(directory)
        self.store.set_hard_state(HardState(1, "bench", 0))
        self.store.sync()  # the first state file write is not part of the steady state
        self.per_sync = per_sync
        self.payload = payload
        self.index = 0

    def run(self, syncs: int) -> float:
        store, payload, per_sync = self.store, self.payload, self.per_sync
        started = time.perf_counter()
        for _ in range(syncs):
            index = self.index
            store.append([Entry(1, index + k, data=payload) for k in range(1, per_sync + 1)])
            store.set_hard_state(HardState(1, "bench", index))  # commit trails one batch
            store.sync()
            self.index = index + per_sync
        return time.perf_counter() - started

    def close(self) -> None:
        self.store.close()


class PlainRunner:
    """Rounds of one os.write of the same volume + os.fdatasync on one file."""

    def __init__(self, path: Path, per_sync: int, payload: bytes) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.chunk = payload * per_sync

    def run(self, syncs: int) -> float:
        fd, chunk = self.fd, self.chunk
        started = time.perf_counter()
        for _ in range(syncs):
            os.write(fd, chunk)
            os.fdatasync(fd)
        return time.perf_counter() - started

    def close(self) -> None:
        os.close(self.fd)


def measure(root: Path, syncs: int, per_sync: int, payload: bytes) -> tuple[float, float]:
    """Seconds of (plain, store) for ``syncs`` rounds each, run in alternating blocks so
    that both see the same disk (its flush latency drifts a lot over seconds)."""
    plain = PlainRunner(root / f"plain-{per_sync}", per_sync, payload)
    store = StoreRunner(root / f"store-{per_sync}", per_sync, payload)
    block = max(1, syncs // 20)
    plain_s = store_s = 0.0
    try:
        for done in range(0, syncs, block):
            count = min(block, syncs - done)
            plain_s += plain.run(count)
            store_s += store.run(count)
    finally:
        plain.close()
        store.close()
    return plain_s, store_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncs", type=int, default=500)
    parser.add_argument("--payload-bytes", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=None,
                        help="scratch directory (default: a temporary one under the cwd, "
                             "so the same disk as the repository)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix=".raftlog-bench-", dir=args.dir or Path.cwd()))
    payload = os.urandom(args.payload_bytes)
    print(f"{args.syncs} syncs per mode, {args.payload_bytes}-byte entries, in {root}")
    print(f"{'mode':<28}{'appends/s':>12}{'syncs/s':>10}{'vs plain':>10}")
    try:
        for per_sync in (1, 64):
            plain, store = measure(root, args.syncs, per_sync, payload)
            for name, seconds in ((f"plain write+fdatasync K={per_sync}", plain),
                                  (f"RaftLogStore K={per_sync}", store)):
                print(f"{name:<28}{args.syncs * per_sync / seconds:>12.0f}"
                      f"{args.syncs / seconds:>10.0f}{plain / seconds:>10.2f}")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
