"""An in-memory network that loses, delays, reorders, duplicates and partitions.

Every decision comes from the simulation's one ``random.Random``. A message is
checked against the partition both when it is sent and when it would arrive, so a
partition also swallows what was already in flight (as a cut cable does).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FaultRates", "InFlight", "Network"]


@dataclass(frozen=True, slots=True)
class FaultRates:
    """How hostile the network is; drawn once per seed and switched off to heal.

    Rates are probabilities per message; delays are in ticks.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    delay_ticks_max: int = 0

    @classmethod
    def draw(cls, rng: random.Random) -> FaultRates:
        return cls(
            drop=rng.choice([0.0, 0.01, 0.05, 0.1, 0.2]),
            duplicate=rng.choice([0.0, 0.01, 0.05, 0.1]),
            delay_ticks_max=rng.choice([0, 1, 2, 3, 5]),
        )


RELIABLE = FaultRates(0.0, 0.0, 1)


@dataclass(slots=True)
class InFlight:
    """A message on the wire; ``seq`` makes ordering total and reproducible."""

    deliver_at: int
    seq: int
    message: Any
    duplicate: bool = False


@dataclass(slots=True)
class Network:
    """Directed links between node ids; ``blocked`` holds the cut (from, to) pairs."""

    rng: random.Random
    rates: FaultRates = RELIABLE
    blocked: set[tuple[str, str]] = field(default_factory=set)
    in_flight: list[InFlight] = field(default_factory=list)
    seq: int = 0
    sent: int = 0
    dropped: int = 0

    def reachable(self, src: str, dst: str) -> bool:
        return (src, dst) not in self.blocked

    def send(self, message: Any, now: int) -> str | None:
        """Queue ``message``; returns why it was lost, or ``None`` if queued."""
        src, dst = message.from_id, message.to_id
        self.sent += 1
        if not self.reachable(src, dst):
            self.dropped += 1
            return "partitioned"
        if self.rates.drop and self.rng.random() < self.rates.drop:
            self.dropped += 1
            return "dropped"
        self._enqueue(message, now, duplicate=False)
        if self.rates.duplicate and self.rng.random() < self.rates.duplicate:
            self._enqueue(message, now, duplicate=True)
        return None

    def _enqueue(self, message: Any, now: int, *, duplicate: bool) -> None:
        delay = self.rng.randint(0, self.rates.delay_ticks_max) if self.rates.delay_ticks_max else 0
        self.seq += 1
        self.in_flight.append(InFlight(now + delay, self.seq, message, duplicate))

    def take_due(self, now: int) -> list[InFlight]:
        """Remove and return the messages due by ``now``, in a random order.

        Shuffling (rather than sorting by send time) is what reorders messages
        between the same two nodes even when their delays are equal.
        """
        due = [m for m in self.in_flight if m.deliver_at <= now]
        if not due:
            return []
        self.in_flight = [m for m in self.in_flight if m.deliver_at > now]
        self.rng.shuffle(due)
        return due

    def drop_node_traffic(self, node_id: str) -> None:
        """Forget in-flight messages to ``node_id`` (it crashed: its sockets died)."""
        self.in_flight = [m for m in self.in_flight if m.message.to_id != node_id]

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Symmetric split: nodes talk only within their own group."""
        sets = [sorted(g) for g in groups]
        for i, a in enumerate(sets):
            for j, b in enumerate(sets):
                if i != j:
                    self.blocked.update((x, y) for x in a for y in b)

    def cut(self, src: str, dst: str) -> None:
        """Asymmetric: ``src`` can no longer reach ``dst`` (the reverse still works)."""
        self.blocked.add((src, dst))

    def heal(self) -> None:
        self.blocked.clear()
