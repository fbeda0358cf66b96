"""Workload (b): unique inserts, and what must hold of them at the end.

Each insert adds one row with a unique ``val`` (plus ``random()`` and
``datetime('now')`` columns: non-deterministic SQL that replicas must not re-evaluate,
F17; the final content-hash comparison catches it). Every insert carries a request id;
an insert whose outcome is unknown is retried with the *same* id (up to
``retries_max`` times, on random members), which must make it apply at most once (F8).

Final check, after the faults healed, against a strong read on the leader and on
every member:

* every acknowledged insert is present (F1, F5, F6);
* every insert the server said certainly failed is absent (F7);
* no ``val`` appears twice (F8: a retry applied again);
* nothing is present that was never attempted;
* ``GET /v1/requests/<id>`` (how a client resolves an unknown outcome) says
  "committed" exactly for the rows that are present.
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
from typing import Any

import httpx

from tests.chaos.client import Client, Outcome, execute
from tests.chaos.context import RunContext

INSERT_SQL = ("INSERT INTO items(val, noise, at) VALUES (?, random(), "
              "strftime('%Y-%m-%d %H:%M:%f', 'now'))")
COUNT_SQL = "SELECT val, count(*) FROM items GROUP BY val"


class SetWorkload:
    name = "set"

    def __init__(self, retries_max: int = 3, status_sample: int = 200) -> None:
        self.retries_max = retries_max
        self.status_sample = status_sample
        self.requests_checked = 0
        self.status: dict[int, Outcome] = {}
        self.attempts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def setup(self, run: RunContext, client: Client) -> None:
        leader = run.cluster.leader()
        answer = client.pipeline(leader, [execute(
            "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, val INTEGER NOT NULL, "
            "noise INTEGER, at TEXT)")])
        assert answer.outcome is Outcome.OK, answer.detail

    def work(self, run: RunContext, worker: int, rng: random.Random, client: Client) -> None:
        for n in itertools.count(1):
            if run.stop.is_set():
                return
            val = worker * 10_000_000 + n
            request_id = f"set-{run.seed}-{val}"
            outcome = Outcome.UNKNOWN
            for attempt in range(1 + self.retries_max):
                member = run.pick(rng)
                if member is None:
                    run.sleep(0.2)
                    continue
                answer = client.pipeline(member, [execute(INSERT_SQL, val)],
                                         request_id=request_id)
                self._count(f"{'retry' if attempt else 'first'}:{answer.outcome.value}")
                if answer.already_applied:
                    self._count("already_applied")
                outcome = _merge(outcome if attempt else None, answer.outcome)
                if answer.outcome is not Outcome.UNKNOWN or run.stop.is_set():
                    break
                run.sleep(rng.uniform(0.1, 0.5))
            with self._lock:
                self.status[val] = outcome
            run.sleep(rng.uniform(0.0, 0.01))

    def _count(self, key: str) -> None:
        with self._lock:
            self.attempts[key] += 1

    def check(self, run: RunContext, client: Client) -> None:
        """Strict checks on the first member that answers a strong read (the leader
        first), the lost-write check on every member."""
        strict_done = False
        members = run.check_targets(run.cluster.leader_now())
        for member in members:
            strict_done |= self._check_on(run, client, member.node_id, strict=not strict_done)
        if not strict_done:
            run.violation("set: no member answered the final strong read")

    def _check_on(self, run: RunContext, client: Client, node_id: str, *,
                  strict: bool) -> bool:
        """Check the rows a strong read on ``node_id`` returns; False if it failed."""
        member = run.cluster.members[node_id]
        answer = client.pipeline(member, [execute(COUNT_SQL)])
        if answer.outcome is not Outcome.OK:
            run.violation(f"set: final strong read on {node_id} failed: {answer.code} "
                          f"{answer.detail}")
            return False
        counts = {int(val): int(n) for val, n in answer.rows()}
        with self._lock:
            status = dict(self.status)
        acked = {v for v, s in status.items() if s is Outcome.OK}
        failed = {v for v, s in status.items() if s is Outcome.FAIL}
        lost = sorted(acked - counts.keys())
        if lost:
            run.violation(f"set: {len(lost)} acknowledged inserts missing on {node_id} "
                          f"(F1): {lost[:20]}")
        if not strict:
            return True
        present_failed = sorted(failed & counts.keys())
        if present_failed:
            run.violation(f"set: {len(present_failed)} inserts reported as certainly "
                          f"failed are present (F7): {present_failed[:20]}")
        duplicated = sorted(v for v, n in counts.items() if n > 1)
        if duplicated:
            run.violation(f"set: {len(duplicated)} inserts applied more than once (F8): "
                          f"{duplicated[:20]}")
        phantom = sorted(counts.keys() - status.keys())
        if phantom:
            run.violation(f"set: {len(phantom)} rows never inserted: {phantom[:20]}")
        unknown = [v for v, s in status.items() if s is Outcome.UNKNOWN]
        self._check_request_status(run, client, node_id, status, counts)
        self.final = {"present": len(counts), "acked": len(acked), "failed": len(failed),
                      "unknown": len(unknown), "checked_on": node_id,
                      "unknown_present": sum(1 for v in unknown if v in counts)}
        return True

    def _check_request_status(self, run: RunContext, client: Client, node_id: str,
                              status: dict[int, Outcome], counts: dict[int, int]) -> None:
        """``GET /v1/requests/<id>`` must say "committed" exactly for present rows.

        Asked for every insert whose outcome was unknown, and a seeded sample of the
        acknowledged and of the failed ones (the endpoint is what a client uses to
        resolve OUTCOME_UNKNOWN).
        """
        rng = run.rng("set-status")
        sample = [v for v, s in status.items() if s is Outcome.UNKNOWN]
        for outcome in (Outcome.OK, Outcome.FAIL):
            values = sorted(v for v, s in status.items() if s is outcome)
            sample += rng.sample(values, min(len(values), self.status_sample))
        member = run.cluster.members[node_id]
        wrong = []
        for val in sorted(sample):
            request_id = f"set-{run.seed}-{val}"
            try:
                response = client.http.get(f"{member.url}/v1/requests/{request_id}")
            except httpx.HTTPError as exc:
                run.violation(f"set: GET /v1/requests/{request_id} failed: {exc}")
                return
            if response.status_code != 200:
                run.violation(f"set: GET /v1/requests/{request_id} answered "
                              f"{response.status_code}: {response.text[:200]}")
                return
            if bool(response.json().get("committed")) != (val in counts):
                wrong.append((val, response.json(), val in counts))
        if wrong:
            run.violation(f"set: /v1/requests disagrees with the table for {len(wrong)} "
                          f"requests (value, answer, present): {wrong[:10]}")
        self.requests_checked = len(sample)

    def summary(self) -> dict[str, Any]:
        return {**getattr(self, "final", {}), "requests_checked": self.requests_checked,
                **dict(sorted(self.attempts.items()))}


def _merge(previous: Outcome | None, latest: Outcome) -> Outcome:
    """Overall outcome of an insert after another attempt with the same request id.

    Any success means it applied. A certain failure of a *retry* says nothing about
    the earlier attempt whose outcome was unknown, so it stays unknown.
    """
    if latest is Outcome.OK:
        return Outcome.OK
    if previous is None:
        return latest
    return Outcome.UNKNOWN


__all__ = ["SetWorkload"]
