"""A process that syncs an offline replica in a loop, for kill -9 tests:
``python -m tests.replica.syncer PATH URL ROWS``: inserts ROWS readings (seq continuing
from what the file has), prints ``syncing``, then syncs until killed."""

from __future__ import annotations

import contextlib
import sys

import edgelite


def main() -> None:
    path, url, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conn = edgelite.connect(path, sync_url=url, offline=True)
    (start,) = conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM readings").fetchone()
    for seq in range(start, start + rows):
        conn.execute("INSERT INTO readings(seq) VALUES (?)", (seq,))
        conn.commit()
    print("syncing", flush=True)
    while True:
        with contextlib.suppress(edgelite.OperationalError):
            conn.sync()


if __name__ == "__main__":
    main()
