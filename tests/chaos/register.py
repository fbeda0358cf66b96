"""Workload (a): linearizable registers through SQL, checked with Wing–Gong/Lowe.

Each key is one row of ``reg(k, v)``. Clients read (``SELECT``), write (upsert) and
compare-and-swap (``UPDATE ... WHERE v = expected``, swapped iff one row changed) at
``strong`` consistency through random members, over HTTP pipelines or (the workers in
``websocket_workers``) over a Hrana WebSocket stream, which a follower proxies to the
leader. Every written value is unique, so a
read names exactly one write. Indeterminate writes and CASes are recorded with an
infinite return time (they may take effect at any later instant, or never);
indeterminate reads constrain nothing and are dropped.

A key is retired after ``ops_per_key`` operations and replaced by a fresh one, so each
key's search stays small (the checker's state is a bit set over the key's operations)
however long the run.
"""

from __future__ import annotations

import collections
import itertools
import math
import random
import threading
from typing import Any

from edgelite.raft.linearizability import (
    CheckResult,
    Operation,
    check,
    describe_failure,
)
from tests.chaos.client import Answer, Client, Outcome, execute, stmt
from tests.chaos.context import RunContext
from tests.chaos.ws_client import WsClient
from tests.support.cluster import Member

READ_SQL = "SELECT v FROM reg WHERE k = ?"
WRITE_SQL = "INSERT INTO reg(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v"
CAS_SQL = "UPDATE reg SET v = ? WHERE k = ? AND v = ?"


class RegisterWorkload:
    name = "register"

    def __init__(self, keys_active: int = 4, ops_per_key: int = 120,
                 budget_steps: int = 2_000_000,
                 websocket_workers: frozenset[int] = frozenset({2})) -> None:
        self.websocket_workers = websocket_workers
        self.keys_active = keys_active
        self.ops_per_key = ops_per_key
        self.budget_steps = budget_steps
        self.history: list[Operation] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self._keys = [f"r{i}" for i in range(keys_active)]
        self._next_key = itertools.count(keys_active)
        self._ops_on: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self.result: CheckResult | None = None
        self.failed: dict[tuple[Any, Any], str] = {}
        self.origin = 0.0

    def setup(self, run: RunContext, client: Client) -> None:
        leader = run.cluster.leader()
        answer = client.pipeline(leader, [execute(
            "CREATE TABLE IF NOT EXISTS reg(k TEXT PRIMARY KEY, v INTEGER)")])
        assert answer.outcome is Outcome.OK, answer.detail

    def _key(self, rng: random.Random) -> str:
        with self._lock:
            slot = rng.randrange(len(self._keys))
            key = self._keys[slot]
            self._ops_on[key] += 1
            if self._ops_on[key] >= self.ops_per_key:
                self._keys[slot] = f"r{next(self._next_key)}"
            return key

    def work(self, run: RunContext, worker: int, rng: random.Random, client: Client) -> None:
        self.origin = run.started  # operation times are seconds since the run started
        transport = _Transport(client, WsClient() if worker in self.websocket_workers
                               else None)
        try:
            self._loop(run, worker, rng, transport)
        finally:
            transport.close()

    def _loop(self, run: RunContext, worker: int, rng: random.Random,
              transport: _Transport) -> None:
        seen: dict[str, int] = {}
        values = itertools.count(1)
        while not run.stop.is_set():
            member = run.pick(rng)
            if member is None:
                run.sleep(0.2)
                continue
            key = self._key(rng)
            who = f"{worker}{transport.tag}@{member.node_id}"  # shown in a failure
            roll = rng.random()
            if roll < 0.5:
                answer = transport.run(member, READ_SQL, key)
                if answer.outcome is Outcome.OK:
                    rows = answer.rows()
                    output = rows[0][0] if rows else None
                    self._record(Operation.read(who, key, output, *self._times(answer)),
                                 answer)
                    if output is not None:
                        seen[key] = output
                else:
                    self._count(answer, "read")
            elif roll < 0.75 or key not in seen:
                value = worker * 1_000_000 + next(values)
                answer = transport.run(member, WRITE_SQL, key, value)
                self._record(Operation.write(who, key, value, *self._times(answer)), answer)
                if answer.outcome is Outcome.OK:
                    seen[key] = value
            else:
                value = worker * 1_000_000 + next(values)
                answer = transport.run(member, CAS_SQL, value, key, seen[key])
                swapped = answer.outcome is Outcome.OK and answer.affected() == 1
                output = None if answer.outcome is Outcome.UNKNOWN else swapped
                self._record(Operation.cas(who, key, seen[key], value, output,
                                           *self._times(answer)), answer)
                if swapped:
                    seen[key] = value
            run.sleep(rng.uniform(0.0, 0.01))

    def _times(self, answer: Answer) -> tuple[float, float]:
        """Call and return time since the run started; an unknown outcome never
        returns (it may take effect at any later time)."""
        call = answer.started - self.origin
        if answer.outcome is Outcome.UNKNOWN:
            return call, math.inf
        return call, answer.finished - self.origin

    def _record(self, op: Operation, answer: Answer) -> None:
        """Keep what ran or may have run; a certain failure never happened (kept aside
        with its error, to explain a read that finds its value anyway)."""
        with self._lock:
            if answer.outcome is Outcome.FAIL:
                self.failed[op.key, op.value] = f"{answer.code}: {answer.detail[:200]}"
            else:
                self.history.append(op)
        self._count(answer, op.kind.value)

    def _count(self, answer: Answer, kind: str) -> None:
        with self._lock:
            self.counts[f"{kind}:{answer.outcome.value}"] += 1
            if answer.outcome is not Outcome.OK:
                self.counts[f"code:{answer.code}"] += 1

    def check(self, run: RunContext, client: Client) -> None:
        with self._lock:
            history = list(self.history)
        result = check(history, budget_steps=self.budget_steps)
        self.result = result
        if result.ok is False:
            run.violation("register history is not linearizable:\n" + describe_failure(result)
                          + self._explain(result))
        elif result.ok is None:
            run.note(f"register: checker budget exhausted ({result.explanation})")

    def _explain(self, result: CheckResult) -> str:
        """Reads of the failing key that returned a value whose write was reported as
        certainly failed (F7), with the error the client got."""
        lines = []
        for op in result.history:
            error = self.failed.get((op.key, op.output)) if op.kind.value == "read" else None
            if error:
                lines.append(f"  value {op.output!r} was read, but its write failed with {error}")
        return ("\nreads of writes reported as failed:\n" + "\n".join(sorted(set(lines)))
                if lines else "")

    def summary(self) -> dict[str, Any]:
        keys = {op.key for op in self.history}
        return {"operations": len(self.history), "keys": len(keys),
                "indeterminate": sum(op.indeterminate for op in self.history),
                "verdict": None if self.result is None else self.result.ok,
                **dict(sorted(self.counts.items()))}




class _Transport:
    """One statement per request, over HTTP (``Client``) or a WebSocket stream."""

    def __init__(self, client: Client, ws: WsClient | None) -> None:
        self.client = client
        self.ws = ws
        self.tag = "ws" if ws is not None else ""

    def run(self, member: Member, sql: str, *args: Any) -> Answer:
        if self.ws is not None:
            return self.ws.execute(member, stmt(sql, *args))
        return self.client.pipeline(member, [execute(sql, *args)])

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


__all__ = ["RegisterWorkload"]
