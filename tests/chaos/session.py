"""Workload (d): session consistency never goes back in time.

Each client owns one row of ``sess(k, v)`` and writes strictly increasing values to it
through random members. It keeps, as its bookmark, the highest replication index any
answer (write or read) carried, and reads its row at ``session`` consistency from
random members, sending that bookmark. Every read must

* reflect at least the bookmark (``x-edgelite-replication-index >= bookmark``), and
* return a value no older than the newest one the client wrote successfully or read
  before (read-your-writes, monotonic reads; F4 for a single client).

A write whose outcome is unknown does not move the floor (it may or may not be
there). Writes only ever raise the row's value (a max-register), so an unknown write
applied late cannot pull it below a newer acknowledged one.
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
from typing import Any

from tests.chaos.client import Client, Outcome, execute
from tests.chaos.context import RunContext

# A max-register: a late write whose outcome was unknown (it may run after a newer one)
# cannot move the row backwards, so any read below the floor is a stale read.
WRITE_SQL = ("INSERT INTO sess(k, v) VALUES (?, ?) "
             "ON CONFLICT(k) DO UPDATE SET v = excluded.v WHERE excluded.v > sess.v")
READ_SQL = "SELECT v FROM sess WHERE k = ?"


class SessionWorkload:
    name = "session"

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def setup(self, run: RunContext, client: Client) -> None:
        leader = run.cluster.leader()
        answer = client.pipeline(leader, [execute(
            "CREATE TABLE IF NOT EXISTS sess(k TEXT PRIMARY KEY, v INTEGER NOT NULL)")])
        assert answer.outcome is Outcome.OK, answer.detail

    def work(self, run: RunContext, worker: int, rng: random.Random, client: Client) -> None:
        key = f"s{worker}"
        values = itertools.count(1)
        floor = 0  # the newest value this client knows is in the database
        bookmark = 0
        while not run.stop.is_set():
            member = run.pick(rng)
            if member is None:
                run.sleep(0.2)
                continue
            if rng.random() < 0.4:
                value = next(values)
                answer = client.pipeline(member, [execute(WRITE_SQL, key, value)],
                                         request_id=f"sess-{run.seed}-{worker}-{value}")
                self._count(f"write:{answer.outcome.value}")
                if answer.outcome is Outcome.OK:
                    floor = max(floor, value)
                    bookmark = max(bookmark, answer.index or 0)
            else:
                answer = client.pipeline(member, [execute(READ_SQL, key)],
                                         consistency="session", bookmark=bookmark or None)
                self._count(f"read:{answer.outcome.value}")
                if answer.outcome is Outcome.OK:
                    rows = answer.rows()
                    seen = int(rows[0][0]) if rows else 0
                    where = (f"session read of {key} on {member.node_id} with bookmark "
                             f"{bookmark} (answer index {answer.index})")
                    if answer.index is None or answer.index < bookmark:
                        run.violation(f"session: {where} reflects an older index")
                    if seen < floor:
                        run.violation(f"session: {where} returned {seen}, older than "
                                      f"{floor} seen before (F4)")
                    floor = max(floor, seen)
                    bookmark = max(bookmark, answer.index or 0)
            run.sleep(rng.uniform(0.0, 0.01))

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def check(self, run: RunContext, client: Client) -> None:
        """Everything is checked while running."""

    def summary(self) -> dict[str, Any]:
        return dict(sorted(self.counts.items()))


__all__ = ["SessionWorkload"]
