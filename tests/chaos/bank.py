"""Workload (c): bank transfers in transactions; every read sees the same total.

``acct(id, bal)`` starts with ``accounts`` rows of ``balance`` each; ``bal >= 0`` is a
CHECK constraint, so an overdraft fails its statement and the transaction rolls back.
Transfers move a random amount between two random accounts, either as one Hrana batch
(``BEGIN``; debit; credit; ``COMMIT``; ``ROLLBACK`` unless committed — what libSQL
clients send for ``batch()``) or as an interactive transaction over two HTTP requests
with a baton (``BEGIN`` + debit, then credit + ``COMMIT``): its stream lives on the
leader and dies with it (F16).

Reads fetch every balance at ``strong`` or ``eventual`` from random members (followers
included): each must show all accounts, none negative, summing to the constant. A
replica applies whole transactions, so even an eventual read may never see half a
transfer.
"""

from __future__ import annotations

import collections
import random
import threading
from typing import Any

from tests.chaos.client import Client, Outcome, execute, stmt
from tests.chaos.context import RunContext
from tests.support.cluster import Member

DEBIT_SQL = "UPDATE acct SET bal = bal - ? WHERE id = ?"
CREDIT_SQL = "UPDATE acct SET bal = bal + ? WHERE id = ?"
READ_SQL = "SELECT id, bal FROM acct ORDER BY id"


class BankWorkload:
    name = "bank"

    def __init__(self, accounts: int = 8, balance: int = 100) -> None:
        self.accounts = accounts
        self.total = accounts * balance
        self.balance = balance
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def setup(self, run: RunContext, client: Client) -> None:
        leader = run.cluster.leader()
        rows = ", ".join(f"({i}, {self.balance})" for i in range(self.accounts))
        answer = client.pipeline(leader, [
            execute("CREATE TABLE IF NOT EXISTS acct(id INTEGER PRIMARY KEY, "
                    "bal INTEGER NOT NULL CHECK (bal >= 0))"),
            execute(f"INSERT INTO acct(id, bal) VALUES {rows}")])
        assert answer.outcome is Outcome.OK, answer.detail

    def work(self, run: RunContext, worker: int, rng: random.Random, client: Client) -> None:
        while not run.stop.is_set():
            member = run.pick(rng)
            if member is None:
                run.sleep(0.2)
                continue
            roll = rng.random()
            if roll < 0.45:
                self._read(run, client, member, rng.choice(("strong", "eventual")))
            else:
                source, target = rng.sample(range(self.accounts), 2)
                amount = rng.randint(1, self.balance // 2)
                if roll < 0.8:
                    self._batch_transfer(client, member, source, target, amount)
                else:
                    self._interactive_transfer(client, member, source, target, amount)
            run.sleep(rng.uniform(0.0, 0.01))

    def _batch_transfer(self, client: Client, member: Member, source: int, target: int,
                        amount: int) -> None:
        steps = [
            {"stmt": stmt("BEGIN")},
            {"stmt": stmt(DEBIT_SQL, amount, source), "condition": _ok(0)},
            {"stmt": stmt(CREDIT_SQL, amount, target), "condition": _ok(1)},
            {"stmt": stmt("COMMIT"), "condition": _ok(2)},
            {"stmt": stmt("ROLLBACK"), "condition": {"type": "not", "cond": _ok(3)}},
        ]
        answer = client.pipeline(member, [{"type": "batch", "batch": {"steps": steps}}])
        self._count(f"batch:{answer.outcome.value}")

    def _interactive_transfer(self, client: Client, member: Member, source: int,
                              target: int, amount: int) -> None:
        first = client.pipeline(member, [execute("BEGIN"), execute(DEBIT_SQL, amount, source)],
                                version=3, keep_open=True)
        if first.outcome is not Outcome.OK or first.baton is None:
            self._count(f"interactive-begin:{first.outcome.value}")
            if first.baton is not None:  # the debit failed (overdraft): end the stream
                client.pipeline(member, [execute("ROLLBACK"), {"type": "close"}],
                                baton=first.baton, version=3)
            return
        second = client.pipeline(member, [execute(CREDIT_SQL, amount, target),
                                          execute("COMMIT"), {"type": "close"}],
                                 baton=first.baton, version=3)
        self._count(f"interactive:{second.outcome.value}")

    def _read(self, run: RunContext, client: Client, member: Member,
              consistency: str) -> None:
        answer = client.pipeline(member, [execute(READ_SQL)], consistency=consistency)
        self._count(f"read-{consistency}:{answer.outcome.value}")
        if answer.outcome is Outcome.OK:
            self.verify(run, answer.rows(), f"{consistency} read on {member.node_id} at "
                                            f"index {answer.index}")

    def verify(self, run: RunContext, rows: list[list[Any]], where: str) -> None:
        balances = {int(i): int(b) for i, b in rows}
        problems = []
        if sorted(balances) != list(range(self.accounts)):
            problems.append(f"accounts {sorted(balances)}")
        if sum(balances.values()) != self.total:
            problems.append(f"total {sum(balances.values())} != {self.total}")
        if any(b < 0 for b in balances.values()):
            problems.append("a negative balance")
        if problems:
            run.violation(f"bank: {', '.join(problems)} in a {where}: {balances}")

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def check(self, run: RunContext, client: Client) -> None:
        for member in run.check_targets():
            for consistency in ("strong", "eventual"):
                answer = client.pipeline(member, [execute(READ_SQL)], consistency=consistency)
                if answer.outcome is not Outcome.OK:
                    run.violation(f"bank: final {consistency} read on {member.node_id} "
                                  f"failed: {answer.code} {answer.detail}")
                    continue
                self.verify(run, answer.rows(), f"final {consistency} read on "
                                                f"{member.node_id}")

    def summary(self) -> dict[str, Any]:
        return dict(sorted(self.counts.items()))


def _ok(step: int) -> dict[str, Any]:
    return {"type": "ok", "step": step}


__all__ = ["BankWorkload"]
