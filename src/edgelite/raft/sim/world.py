"""One seeded simulation run: nodes, network, clients, faults, and the checks.

A run is a sequence of rounds. In each round every running node ticks once, the
messages due are delivered in random order (each delivery may be followed at once
by the receiver's Ready), idle clients may start requests, and every node's pending
Ready is processed. Faults strike between rounds. Every so often, and at the end,
the world *heals* (network repaired, crashed nodes restarted, faults paused) and
liveness is required within a bound: a leader emerges, a fresh proposal commits and
every member applies it. The run ends by checking that the members converged and
that the client history is linearizable.

Everything random comes from one ``random.Random(seed)``, drawn in a fixed order,
and nothing iterates a set of strings without sorting it: a seed replays exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from edgelite.raft import linearizability
from edgelite.raft.describe import describe_message
from edgelite.raft.messages import Message
from edgelite.raft.sim.clients import ClientPool
from edgelite.raft.sim.liveness import await_liveness, converge
from edgelite.raft.sim.network import RELIABLE, FaultRates, InFlight, Network
from edgelite.raft.sim.node import NodeTuning, SimNode
from edgelite.raft.sim.oracle import InvariantViolation, Oracle
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import ConfChange, ConfChangeKind, ConfState, Role

__all__ = ["SimOptions", "SimResult", "World"]

# Per key; far above what the histories here need (see the checker_steps_max stat).
_CHECK_BUDGET_STEPS = 2_000_000


@dataclass(frozen=True, slots=True)
class SimOptions:
    """What to run. The two ``*_bug`` switches exist to prove the checks can fail."""

    seed: int
    voters: int = 3
    steps: int = 400
    verbose: bool = False
    liveness_bound_ticks: int = 300
    send_before_persist_bug: bool = False
    local_reads_bug: bool = False


@dataclass(slots=True)
class SimResult:
    seed: int
    voters: int
    ok: bool
    failure: str = ""
    rounds: int = 0
    transcript: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Profile:
    """Per-seed knobs, drawn from the seed so that seeds explore different regimes."""

    learners: int
    rates: FaultRates
    fault_chance: float
    clients: int
    client_rate: float
    calm_every: int
    async_steps: bool
    tuning: NodeTuning

    @classmethod
    def draw(cls, rng: random.Random) -> Profile:
        tuning = NodeTuning(
            election_timeout_ticks=10,
            heartbeat_interval_ticks=rng.choice([1, 2, 3]),
            max_message_bytes=rng.choice([100, 200, 1024, 1 << 16]),
            max_inflight_messages=rng.choice([1, 4, 64]),
            max_committed_bytes_per_ready=rng.choice([300, 1 << 20]),
            pre_vote=rng.random() < 0.75,
            check_quorum=rng.random() < 0.75,
        )
        return cls(
            learners=rng.choice([0, 1, 1, 2]),
            rates=FaultRates.draw(rng),
            fault_chance=rng.choice([0.03, 0.06, 0.1, 0.2]),
            clients=rng.choice([2, 3, 4]),
            client_rate=rng.choice([0.2, 0.4, 0.7]),
            calm_every=rng.randint(80, 200),
            async_steps=rng.random() < 0.5,
            tuning=tuning,
        )


class World:
    """The simulated cluster and its environment (implements ``NodeHost``)."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.verbose = options.verbose
        self.rng = random.Random(options.seed)
        self.profile = Profile.draw(self.rng)
        self.now = 0
        self.transcript: list[str] = []
        self.oracle = Oracle()
        self.network = Network(self.rng, self.profile.rates)
        self.clients = ClientPool(
            self.rng, self.profile.clients, 40, self.log, options.local_reads_bug
        )
        self.oracle.tickets = self.clients.tickets
        self.nodes: dict[str, SimNode] = {}
        self.next_node = 1
        self.retired: set[str] = set()
        self.retire_at: dict[str, int] = {}
        # A paused node (GC pause, stalled VM) neither ticks nor reads its messages.
        self.paused_until: dict[str, int] = {}
        self.churn_until = 0
        self.probes = 0
        self.heals = 0
        self.liveness_ticks_max = 0
        self.counts: dict[str, int] = {}
        self.conf_indexes: set[int] = set()
        founders = [self.new_id() for _ in range(options.voters + self.profile.learners)]
        conf = ConfState(
            frozenset(founders[: options.voters]), frozenset(founders[options.voters :])
        )
        self.founders = len(founders)
        for node_id in founders:
            self.add_node(node_id, MemoryStorage.bootstrapped(conf))
        self.log(f"seed {options.seed}: {conf.describe()} profile {self.profile}")

    # -- NodeHost -----------------------------------------------------------------------

    def count(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def log(self, line: str) -> None:
        if self.verbose:
            self.transcript.append(f"{self.now:05d} {line}")

    def send(self, message: Message) -> None:
        lost = self.network.send(message, self.now + 1)
        if self.verbose:
            self.log(f"send {describe_message(message)}" + (f" [{lost}]" if lost else ""))

    def storages(self) -> dict[str, MemoryStorage]:
        return {node_id: node.storage for node_id, node in self.nodes.items()}

    def while_ready_outstanding(self, node: SimNode) -> None:
        """Sometimes step a few of the node's due messages between ready() and advance()."""
        if not self.profile.async_steps or self.rng.random() >= 0.3:
            return
        mine = [
            f for f in self.network.in_flight
            # Due next round: arriving a little early is just a shorter delay.
            if f.message.to_id == node.node_id and f.deliver_at <= self.now + 1
        ][:3]
        for flight in mine:
            self.network.in_flight.remove(flight)
            if node.raft is None or not self.network.reachable(
                flight.message.from_id, node.node_id
            ):
                continue
            if self.verbose:
                self.log(f"deliver (Ready outstanding) {describe_message(flight.message)}")
            node.raft.step(flight.message)
            self.count("step_while_ready_outstanding")

    def after_apply(self, node: SimNode) -> None:
        self.clients.on_node_progress(node)

    def on_conf_applied(self, node: SimNode, cc: ConfChange, index: int) -> None:
        if index > self.founders and index not in self.conf_indexes:
            self.conf_indexes.add(index)
            self.count("conf_change_committed")
        removal = cc.kind in (ConfChangeKind.REMOVE_VOTER, ConfChangeKind.REMOVE_LEARNER)
        # (An invalid change is applied as a no-op: only retire nodes really gone.)
        if removal and cc.node_id not in node.conf.members and cc.node_id not in self.retire_at:
            # Keep it running a while: a removed node must not disrupt the others.
            self.retire_at[cc.node_id] = self.now + 3 * self.profile.tuning.election_timeout_ticks
            self.log(f"{cc.node_id} removed (applied at {node.node_id}); retires later")

    # -- nodes --------------------------------------------------------------------------

    def new_id(self) -> str:
        node_id = f"n{self.next_node}"
        self.next_node += 1
        return node_id

    def add_node(self, node_id: str, storage: MemoryStorage) -> SimNode:
        node = SimNode(
            node_id, storage, self, self.profile.tuning,
            persist_before_send=not self.options.send_before_persist_bug,
        )
        self.nodes[node_id] = node
        node.restart(self.rng)
        return node

    def up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.up]

    def running_nodes(self) -> list[SimNode]:
        """Up and not paused."""
        return [n for n in self.nodes.values() if n.up and n.node_id not in self.paused_until]

    def _drain_ready(self, node: SimNode) -> None:
        from edgelite.raft.sim.faults import churn_step

        for _ in range(8):
            if node.raft is None or not node.raft.has_ready():
                return
            if self.now < self.churn_until and churn_step(self, node):
                return
            node.handle_ready()

    def leader(self) -> SimNode | None:
        """The running leader with the highest term, if any."""
        leaders = [n for n in self.up_nodes() if n.role is Role.LEADER]
        if not leaders:
            return None
        return max(leaders, key=lambda n: (n.storage.hard_state.term, n.node_id))

    # -- rounds -------------------------------------------------------------------------

    def round(self, faults: bool, client_rate: float) -> None:
        from edgelite.raft.sim.faults import churn_restarts, inject_fault  # faults drive a World

        self.now += 1
        if self.now < self.churn_until:
            churn_restarts(self)
        for node_id in sorted(self.paused_until):
            if self.paused_until[node_id] <= self.now or not self.nodes[node_id].up:
                del self.paused_until[node_id]
                self.log(f"{node_id} resumes")
        up = self.running_nodes()
        self.rng.shuffle(up)
        for node in up:
            assert node.raft is not None
            node.raft.tick()
        due = self.network.take_due(self.now)
        # A fault strikes, and clients act, at random points among the deliveries:
        # crashes then often find a node with a Ready it has not handled yet, and a
        # client may reach a node before the message that would correct its view.
        fault_at = self.rng.randrange(len(due) + 1)
        clients_at = self.rng.randrange(len(due) + 1)
        strike = faults and self.rng.random() < self.profile.fault_chance
        for position in range(len(due) + 1):
            if strike and position == fault_at:
                inject_fault(self)
            if client_rate and position == clients_at:
                self.clients.act(self.running_nodes(), self.now, client_rate)
            if position < len(due):
                self._deliver(due[position])
        up = self.running_nodes()
        self.rng.shuffle(up)
        for node in up:
            self._drain_ready(node)
        self.clients.expire(self.nodes, self.now)
        for node_id in sorted(self.retire_at):
            if self.retire_at[node_id] <= self.now and node_id not in self.retired:
                self.retired.add(node_id)
                self.nodes[node_id].crash()
                self.log(f"{node_id} retired")

    def _deliver(self, flight: InFlight) -> None:
        message = flight.message
        node = self.nodes.get(message.to_id)
        if node is None or node.raft is None:
            return
        if not self.network.reachable(message.from_id, message.to_id):
            return
        if message.to_id in self.paused_until:
            # It sits in the socket buffer until the process runs again.
            flight.deliver_at = self.paused_until[message.to_id]
            self.network.in_flight.append(flight)
            return
        if self.verbose:
            self.log(f"deliver {describe_message(message)}")
        node.raft.step(message)
        if self.rng.random() < 0.3:
            self._drain_ready(node)

    # -- healing and liveness -----------------------------------------------------------

    def heal(self) -> None:
        self.heals += 1
        self.paused_until.clear()
        self.churn_until = 0
        self.network.heal()
        self.network.rates = RELIABLE
        for node in self.nodes.values():
            if not node.up and node.node_id not in self.retired:
                node.restart(self.rng)
        self.log("HEAL: network repaired, crashed nodes restarted, faults paused")

    def describe_nodes(self) -> str:
        lines = []
        for node_id, node in self.nodes.items():
            hs = node.storage.hard_state
            state = "retired" if node_id in self.retired else ("up" if node.up else "down")
            lines.append(
                f"  {node_id} {state} role={node.role.value} term={hs.term} vote={hs.vote} "
                f"commit={node.commit} applied={node.kv.applied} "
                f"log={node.storage.first_index()}..{node.storage.last_index()} "
                f"conf {node.conf.describe()}"
            )
        return "\n".join(lines)

    # -- the whole run ------------------------------------------------------------------

    def run(self) -> SimResult:
        result = SimResult(self.options.seed, self.options.voters, ok=True)
        try:
            self._run()
        except InvariantViolation as exc:
            result.ok, result.failure = False, f"violation: {exc}"
        except Exception as exc:  # a crash of the core (or sim) is a failure too
            result.ok, result.failure = False, f"exception: {type(exc).__name__}: {exc}"
        result.rounds = self.now
        result.transcript = self.transcript
        result.stats = self._stats()
        if not result.ok:
            self.log(f"FAILED: {result.failure}")
        return result

    def _run(self) -> None:
        rate = self.profile.client_rate
        next_calm = self.profile.calm_every
        while self.now < self.options.steps:
            if self.now >= next_calm:
                self.heal()
                self._note_liveness(await_liveness(self, rate))
                self.network.rates = self.profile.rates
                next_calm = self.now + self.profile.calm_every
            self.round(faults=True, client_rate=rate)
        self.heal()
        self._note_liveness(await_liveness(self, 0.0))
        converge(self)
        self.clients.drain(self.nodes)
        self._check_history()

    def _note_liveness(self, ticks: int) -> None:
        self.liveness_ticks_max = max(self.liveness_ticks_max, ticks)

    def _check_history(self) -> None:
        verdict = linearizability.check(self.clients.history, budget_steps=_CHECK_BUDGET_STEPS)
        self.count("checker_steps", verdict.steps)
        self.counts["checker_steps_max"] = verdict.steps
        if verdict.ok is not True:
            raise InvariantViolation(
                "linearizability: " + linearizability.describe_failure(verdict)
            )

    def _stats(self) -> dict[str, int]:
        return {
            "rounds": self.now,
            "nodes": len(self.nodes),
            "terms": max(self.oracle.leaders, default=0),
            "committed": self.oracle.commit_max,
            "ops": len(self.clients.history),
            "heals": self.heals,
            "liveness_ticks_max": self.liveness_ticks_max,
            "messages": self.network.sent,
            "checks": self.oracle.checks,
            **self.clients.outcomes,
            **self.counts,
        }
