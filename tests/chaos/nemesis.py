"""Nemeses: faults injected into a running cluster on a seeded schedule.

A ``Nemesis`` loop picks a fault kind, targets and durations from its random source,
starts the fault, and heals it when its hold time is over. With ``concurrent_max > 1``
faults overlap (F5: pauses, crashes, partitions and membership changes together). Each
node-level fault *owns* its nodes, so two faults never fight over one process; at most
one fault owns the network rules at a time.

Kinds (``KINDS``):

* ``kill-leader`` / ``kill-follower``: SIGKILL, restart when healed; ``kill-majority``:
  SIGKILL more than half of the members at once; ``kill-all``: every member (a full
  restart when healed; F4); ``terminate-leader``: SIGTERM (a polite stop, which must
  end within ``STOP_TIMEOUT_S``), restart when healed.
* ``pause-leader`` / ``pause-follower``: SIGSTOP for longer than an election timeout,
  then SIGCONT.
* ``isolate-leader``, ``partition-halves`` (a random minority against the rest),
  ``partition-one-way`` (the leader's messages stop, or only those it receives),
  ``partition-ring`` (each node reaches only its two ring neighbours: every node
  sees a different majority), ``slow-node`` (latency on every link of one node).
* ``transfer``: leadership transfer to a random voter (instant).
* ``membership``: join a learner or voter, promote a learner, remove a voter (the
  leader sometimes), keeping the voter count near its start (instant).
* ``disk-full``: fill the tmpfs data directory of a node (the first time, and then
  sometimes, after moving leadership to it), free it when healed.
* ``fsync-fail``: make fdatasync fail in one node's process (libfiu; the leader the
  first time, then sometimes), then stop.

* ``corrupt-log``: stop a follower, flip one byte inside a record of its Raft log
  (not the tail: damage, not a torn write; F12), start it again. When healed: if it
  refused to start, replace it (remove it, join a fresh member), as an operator
  would; if it runs, the final checks judge what it serves.

After a fault that can stop a process (disk full, fsync failure) the nemesis acts as a
process supervisor: a member that exited is restarted, and that is logged. A member
that exits without a fault that explains it is logged as a crash.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from tests.chaos.context import RunContext
from tests.chaos.storage_nemesis import Fault, StorageFaults

KINDS = ("kill-leader", "kill-follower", "kill-majority", "kill-all", "terminate-leader",
         "pause-leader", "pause-follower", "isolate-leader", "partition-halves",
         "partition-one-way", "partition-ring", "slow-node", "transfer", "membership",
         "disk-full", "fsync-fail", "corrupt-log")
PAUSE_MIN_S = 1.5  # longer than the longest election timeout (2 x 10 ticks x 50 ms)
JOIN_WAIT_S = 30.0  # a member launched with --join becomes a member within this
SUPERVISE_INTERVAL_S = 0.2
STOP_TIMEOUT_S = 10.0
ADMIN_TIMEOUT_S = 8.0  # a membership call that takes longer has an unknown outcome
INSTANT = object()  # what an instant nemesis (transfer, membership change) returns


class Nemesis(StorageFaults):
    def __init__(self, run: RunContext, kinds: Sequence[str], *, concurrent_max: int = 1,
                 hold_s: tuple[float, float] = (1.5, 4.0),
                 gap_s: tuple[float, float] = (0.5, 2.0), first: Sequence[str] = ()) -> None:
        unknown = set(kinds) - set(KINDS)
        assert not unknown, f"unknown nemesis kinds {unknown}"
        self.run = run
        self.cluster = run.cluster
        self.kinds = tuple(kinds)
        self.concurrent_max = concurrent_max
        self.hold_s = hold_s
        self.gap_s = gap_s
        self.rng = run.rng("nemesis")
        self.queue = list(first)  # injected before any random pick
        self.active: list[Fault] = []
        self.voters_base = len(self.cluster.members)
        self.ever_members: set[str] = set(self.cluster.members)
        self._new_ids = itertools.count(len(self.cluster.members) + 1)
        self.injected = 0
        self._storage_faults = 0
        self.damaged: set[str] = set()
        self.lock = threading.RLock()  # the schedule and the supervisor take turns
        self._supervising_stopped = threading.Event()
        self._restarted_at: dict[str, float] = {}

    # --- the schedule ------------------------------------------------------------------

    def run_for(self, duration_s: float) -> None:
        deadline = time.monotonic() + duration_s
        next_start = time.monotonic() + self.rng.uniform(*self.gap_s)
        while time.monotonic() < deadline:
            now = time.monotonic()
            with self.lock:
                for fault in [f for f in self.active if f.until <= now]:
                    self._heal(fault)
                if now >= next_start and len(self.active) < self.concurrent_max:
                    self._start(self.queue.pop(0) if self.queue else
                                self.rng.choice(self.kinds))
                    next_start = time.monotonic() + self.rng.uniform(*self.gap_s)
            time.sleep(0.05)

    def supervise(self) -> threading.Thread:
        """Restart members that exit by themselves, from now until ``stop_supervising``
        (through healing, recovery and the checks too, as a real supervisor would)."""
        def loop() -> None:
            while not self._supervising_stopped.wait(SUPERVISE_INTERVAL_S):
                with self.lock:
                    self._supervise()

        thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        thread.start()
        return thread

    def stop_supervising(self) -> None:
        self._supervising_stopped.set()

    def _start(self, kind: str) -> None:
        method = getattr(self, "_" + kind.replace("-", "_"))
        try:
            fault = method()
        except Exception as exc:  # a nemesis step failing is part of the chaos
            self.run.event(f"{kind}: could not start ({type(exc).__name__}: {exc})")
            return
        if fault is INSTANT:
            self.injected += 1
        elif fault is not None:
            self.injected += 1
            self.active.append(fault)

    def _heal(self, fault: Fault) -> None:
        self.active.remove(fault)
        try:
            fault.heal()
        except Exception as exc:
            self.run.event(f"heal {fault.kind} failed: {type(exc).__name__}: {exc}")
            raise
        self.run.event(f"healed {fault.kind} {sorted(fault.nodes)}")

    def heal_all(self) -> None:
        with self.lock:
            self._heal_all()

    def _heal_all(self) -> None:
        for fault in reversed(list(self.active)):
            self._heal(fault)
        self.cluster.router.heal()
        for node_id in self.cluster.members:
            self.cluster.router.slow(node_id, 0)
        for node_id in list(self.cluster.paused):
            self.cluster.resume(node_id)
        self._wait_for_joins()
        self._replace_damaged()
        self._wait_for_joins()
        self._reconcile_removed()
        for node_id, member in list(self.cluster.members.items()):
            if node_id in self.cluster.removed:
                continue
            if node_id not in self.ever_members:  # a join that never got through
                self.run.event(f"{node_id} never became a member; dropped")
                self.cluster.kill(node_id)
                self.cluster.mark_removed(node_id)
            elif not member.alive and node_id not in self.damaged:
                self.run.event(f"restart {node_id} (final heal)")
                self.cluster.restart(node_id)

    def _wait_for_joins(self) -> None:
        """Until every running member launched to join has become a member (bounded)."""
        deadline = time.monotonic() + JOIN_WAIT_S
        while time.monotonic() < deadline:
            self._learn_members()
            joining = [n for n in self.cluster.in_cluster()
                       if n not in self.ever_members and self.cluster.members[n].alive]
            if not joining:
                return
            time.sleep(0.5)
        self.run.event(f"joins still pending after {JOIN_WAIT_S:g} s")

    def _supervise(self) -> None:
        owned = self._owned()
        for node_id in self.cluster.in_cluster():
            member = self.cluster.members[node_id]
            if member.process is not None and not member.alive and node_id not in owned:
                code = member.process.returncode
                if node_id not in self.ever_members:
                    self._learn_members()
                if node_id not in self.ever_members:  # its join gave up
                    self.run.event(f"{node_id} exited (code {code}) before it joined")
                    self.cluster.mark_removed(node_id)
                    continue
                if node_id in self.damaged or \
                        time.monotonic() - self._restarted_at.get(node_id, 0.0) < 2.0:
                    continue
                self._restarted_at[node_id] = time.monotonic()
                self.run.event(f"{node_id} exited by itself (code {code}); restarting")
                self.run.note(f"{node_id} exited by itself with code {code}")
                self.cluster.restart(node_id)

    # --- targets ------------------------------------------------------------------------

    def _owned(self) -> set[str]:
        return {n for fault in self.active for n in fault.nodes}

    def _free(self) -> list[str]:
        owned = self._owned()
        return sorted(n for n in self.cluster.in_cluster()
                      if n not in owned and self.cluster.members[n].alive)

    def _leader(self) -> str | None:
        leader = self.cluster.leader_now()
        return leader.node_id if leader is not None else None

    def _hold(self, minimum: float = 0.0) -> float:
        return time.monotonic() + max(minimum, self.rng.uniform(*self.hold_s))

    def _network_busy(self) -> bool:
        return any(f.network for f in self.active)

    def _learn_members(self) -> None:
        for status in self.cluster.statuses().values():
            self.ever_members |= {m["id"] for m in status.get("members", [])}

    # --- processes ----------------------------------------------------------------------

    def _kill(self, kind: str, targets: list[str]) -> Fault:
        for node_id in targets:
            self.cluster.kill(node_id)
        self.run.event(f"{kind}: SIGKILL {targets}")

        def heal() -> None:
            for node_id in targets:
                if node_id not in self.cluster.removed:
                    self.cluster.restart(node_id)

        return Fault(kind, frozenset(targets), heal, self._hold())

    def _terminate_leader(self) -> Fault | None:
        """A polite stop (SIGTERM) of the leader, as an operator or a deploy does; it must
        end within STOP_TIMEOUT_S (open transactions fail, nothing half-applied)."""
        leader = self._leader()
        if leader is None or leader not in self._free():
            return None
        process = self.cluster.members[leader].process
        assert process is not None
        process.terminate()
        try:
            code = process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.run.violation(f"{leader} did not stop within {STOP_TIMEOUT_S:g} s of SIGTERM")
            self.cluster.kill(leader)
            code = -9
        self.run.event(f"terminate-leader: SIGTERM {leader} (exit {code})")

        def heal() -> None:
            if leader not in self.cluster.removed:
                self.cluster.restart(leader)

        return Fault("terminate-leader", frozenset([leader]), heal, self._hold())

    def _kill_leader(self) -> Fault | None:
        leader = self._leader()
        if leader is None or leader not in self._free():
            return None
        return self._kill("kill-leader", [leader])

    def _kill_follower(self) -> Fault | None:
        leader = self._leader()
        choices = [n for n in self._free() if n != leader]
        return self._kill("kill-follower", [self.rng.choice(choices)]) if choices else None

    def _kill_majority(self) -> Fault | None:
        free = self._free()
        count = len(self.cluster.in_cluster()) // 2 + 1
        if len(free) < count:
            return None
        return self._kill("kill-majority", self.rng.sample(free, count))

    def _kill_all(self) -> Fault | None:
        free = self._free()
        if self.active or len(free) < len(self.cluster.in_cluster()):
            return None
        return self._kill("kill-all", free)

    def _pause(self, kind: str, node_id: str) -> Fault:
        self.cluster.pause(node_id)
        self.run.event(f"{kind}: SIGSTOP {node_id}")
        return Fault(kind, frozenset([node_id]), lambda: self.cluster.resume(node_id),
                     self._hold(PAUSE_MIN_S))

    def _pause_leader(self) -> Fault | None:
        leader = self._leader()
        if leader is None or leader not in self._free():
            return None
        return self._pause("pause-leader", leader)

    def _pause_follower(self) -> Fault | None:
        leader = self._leader()
        choices = [n for n in self._free() if n != leader]
        return self._pause("pause-follower", self.rng.choice(choices)) if choices else None

    # --- network -----------------------------------------------------------------------

    def _partition(self, kind: str, describe: str, apply: Callable[[], None]) -> Fault:
        apply()
        self.run.event(f"{kind}: {describe}")
        return Fault(kind, frozenset(), self.cluster.router.heal, self._hold(), network=True)

    def _isolate_leader(self) -> Fault | None:
        leader = self._leader()
        if leader is None or self._network_busy():
            return None
        others = [n for n in self.cluster.in_cluster() if n != leader]
        return self._partition("isolate-leader", f"{leader} | {others}",
                               lambda: self.cluster.router.isolate(leader, others))

    def _partition_halves(self) -> Fault | None:
        if self._network_busy():
            return None
        nodes = sorted(self.cluster.in_cluster())
        self.rng.shuffle(nodes)
        minority, majority = nodes[:len(nodes) // 2], nodes[len(nodes) // 2:]
        return self._partition("partition-halves", f"{sorted(minority)} | {sorted(majority)}",
                               lambda: self.cluster.router.partition(minority, majority))

    def _partition_one_way(self) -> Fault | None:
        leader = self._leader()
        if leader is None or self._network_busy():
            return None
        others = [n for n in self.cluster.in_cluster() if n != leader]
        outbound = self.rng.random() < 0.5
        pairs = [(leader, n) if outbound else (n, leader) for n in others]

        def apply() -> None:
            self.cluster.router.heal()
            for a, b in pairs:
                self.cluster.router.cut(a, b)

        direction = f"{leader} -> others" if outbound else f"others -> {leader}"
        return self._partition("partition-one-way", f"cut {direction}", apply)

    def _partition_ring(self) -> Fault | None:
        nodes = sorted(self.cluster.in_cluster())
        if len(nodes) < 5 or self._network_busy():
            return None
        self.rng.shuffle(nodes)
        size = len(nodes)
        neighbours = {n: {nodes[(i - 1) % size], nodes[(i + 1) % size]}
                      for i, n in enumerate(nodes)}
        pairs = [(a, b) for a in nodes for b in nodes if a != b and b not in neighbours[a]]

        def apply() -> None:
            self.cluster.router.heal()
            for a, b in pairs:
                self.cluster.router.cut(a, b)

        return self._partition("partition-ring", f"ring {nodes}", apply)

    def _slow_node(self) -> Fault | None:
        free = self._free()
        if not free:
            return None
        node_id = self.rng.choice(free)
        delay_ms = self.rng.choice((50, 100, 250, 500))
        self.cluster.router.slow(node_id, delay_ms)
        self.run.event(f"slow-node: {node_id} +{delay_ms} ms per chunk")
        return Fault("slow-node", frozenset([node_id]),
                     lambda: self.cluster.router.slow(node_id, 0), self._hold())

    # --- cluster operations (instant) ------------------------------------------------------

    def _transfer(self) -> object:
        leader = self._leader()
        voters = self._voters()
        choices = [n for n in voters if n != leader and n in self._free()]
        if leader is None or not choices:
            return
        target = self.rng.choice(choices)
        response = self.cluster.admin("POST", "/v1/cluster/transfer", {"to": target},
                                      timeout_s=ADMIN_TIMEOUT_S)
        self.run.event(f"transfer {leader} -> {target}: HTTP {response.status_code} "
                       f"{response.text[:120]}")
        return INSTANT

    def _voters(self) -> list[str]:
        for status in self.cluster.statuses().values():
            return sorted(m["id"] for m in status.get("members", []) if m["role"] == "voter")
        return []

    def _membership(self) -> object:
        self._learn_members()
        statuses = self.cluster.statuses()
        if not statuses:
            return
        status = max(statuses.values(), key=lambda s: s["term"])
        roles = {m["id"]: m["role"] for m in status["members"]}
        free = set(self._free())
        learners = [n for n, r in roles.items() if r == "learner" and n in free]
        voters = [n for n, r in roles.items() if r == "voter" and n in free]
        roll = self.rng.random()
        if learners and roll < 0.6:
            node_id = self.rng.choice(sorted(learners))
            response = self.cluster.admin("POST", f"/v1/cluster/members/{node_id}/promote",
                                          timeout_s=ADMIN_TIMEOUT_S)
            self.run.event(f"membership: promote {node_id}: HTTP {response.status_code}")
        elif sum(r == "voter" for r in roles.values()) > self.voters_base and voters:
            self._remove(self.rng.choice(sorted(voters)), status.get("leader_id"))
        else:
            node_id = f"n{next(self._new_ids)}"
            learner = self.rng.random() < 0.5
            member = self.cluster.join(node_id, learner=learner)
            self.run.event(f"membership: join {member.node_id} as "
                           f"{'learner' if learner else 'voter'}")
        return INSTANT

    def _remove(self, node_id: str, leader_id: str | None) -> None:
        if node_id == leader_id and self.rng.random() < 0.7:
            return  # remove the leader only sometimes
        response = self.cluster.admin("DELETE", f"/v1/cluster/members/{node_id}",
                                      timeout_s=ADMIN_TIMEOUT_S)
        self.run.event(f"membership: remove {node_id}: HTTP {response.status_code} "
                       f"{response.text[:120]}")
        if response.status_code == 200:
            self.cluster.mark_removed(node_id)
            self.cluster.kill(node_id)
        else:  # the outcome is unknown: it may still commit
            self._reconcile_removed()

    def _reconcile_removed(self) -> None:
        """Stop members the cluster no longer lists (a removal whose answer was lost)."""
        own = [s for node_id, s in self.cluster.statuses().items()
               if s.get("leader_id") == node_id]  # the leader's own view only
        if not own:
            return
        status = max(own, key=lambda s: s["term"])
        listed = {m["id"] for m in status["members"]}
        for node_id in self.cluster.in_cluster():
            if node_id in self.ever_members and node_id not in listed:
                self.run.event(f"{node_id} is no longer a member; stopping it")
                self.cluster.mark_removed(node_id)
                self.cluster.kill(node_id)

__all__ = ["KINDS", "Nemesis"]
