"""What workloads and nemeses share during one chaos run: the cluster, the seeded
random sources, the stop flag, the log of events and the list of violations.

Reproducibility: every random choice (nemesis kind, target, timing; each client's
operation, key, value and target member) comes from a ``random.Random`` derived from
the run's seed. Thread interleaving and process timing are not reproducible, so a seed
replays the same *schedule*, not the same history.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from typing import Any, Protocol

from tests.chaos.client import Client
from tests.chaos.harness import ChaosCluster
from tests.support.cluster import Member


class Workload(Protocol):
    name: str

    def setup(self, run: RunContext, client: Client) -> None: ...
    def work(self, run: RunContext, worker: int, rng: random.Random,
             client: Client) -> None: ...
    def check(self, run: RunContext, client: Client) -> None: ...
    def summary(self) -> dict[str, Any]: ...


@dataclasses.dataclass
class RunContext:
    cluster: ChaosCluster
    seed: int
    started: float = dataclasses.field(default_factory=time.monotonic)
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    events: list[str] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    # The cluster did not recover after healing: final checks ask one member only
    # (each failing strong read costs a read timeout) and are already failing.
    degraded: bool = False

    def rng(self, *salt: object) -> random.Random:
        """A random source for one actor, derived from the seed and the actor's name."""
        return random.Random(f"{self.seed}:" + ":".join(map(str, salt)))

    def clock(self) -> float:
        return time.monotonic() - self.started

    def event(self, text: str) -> None:
        with self.lock:
            self.events.append(f"{self.clock():7.2f}s {text}")

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(f"{self.clock():7.2f}s {text}")

    def note(self, text: str) -> None:
        with self.lock:
            self.notes.append(text)

    def pick(self, rng: random.Random) -> Member | None:
        """A random member that can answer (running, not paused, not removed)."""
        members = self.cluster.live()
        if not members:
            return None
        members.sort(key=lambda m: m.node_id)
        return rng.choice(members)

    def check_targets(self, first: Member | None = None) -> list[Member]:
        """Members a final check asks: every live one (``first`` first), or only the
        first when the run is degraded."""
        members = sorted(self.cluster.live(), key=lambda m: (m is not first, m.node_id))
        return members[:1] if self.degraded else members

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the run stops first; False if it stopped."""
        return not self.stop.wait(seconds)


__all__ = ["RunContext", "Workload"]
