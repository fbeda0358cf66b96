"""Simulated clients: a key/value workload whose history feeds the checker.

Each client runs one request at a time (as a real connection would):

* writes and compare-and-swaps are proposed on a node that believes it leads; the
  client learns the outcome when *that* node has applied the ticket's index: the
  request is in the store's result table (it took effect, with this result) or it is
  not (a different entry won that index: it never took effect);
* reads go to any node, leader, follower or learner, through ReadIndex, and are
  answered from that node's store once it has applied the read index;
* a request whose node crashes, or that outlives its timeout, is recorded as
  indeterminate (``ret = inf``): it may or may not have taken effect.

History times are a global event counter, so no two events share a time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from edgelite.errors import ClusterError
from edgelite.raft.linearizability import Operation, OpKind
from edgelite.raft.sim.kv import Command, encode_command
from edgelite.raft.sim.node import SimNode
from edgelite.raft.types import Role

__all__ = ["ClientPool", "Pending"]

KEYS = ("a", "b", "c")


@dataclass(slots=True)
class Pending:
    """A request in flight."""

    client_id: str
    kind: OpKind
    key: str
    node_id: str
    incarnation: int
    call: int
    deadline_tick: int
    request_id: str = ""
    value: str | None = None
    expected: str | None = None
    ticket_index: int = 0
    context: bytes = b""


class ClientPool:
    """All clients of one simulation, and the history they record."""

    def __init__(
        self, rng: random.Random, count: int, timeout_ticks: int,
        log: Callable[[str], None], local_reads_bug: bool = False,
    ) -> None:
        self.rng = rng
        # Serve reads from local state with no ReadIndex: a deliberate bug.
        self.local_reads_bug = local_reads_bug
        self.ids = [f"c{i}" for i in range(1, count + 1)]
        self.timeout_ticks = timeout_ticks
        self.log = log
        self.pending: dict[str, Pending] = {}
        self.seen: dict[tuple[str, str], str | None] = {}
        self.history: list[Operation] = []
        self.seq = 0
        self.clock = 0
        self.tickets: dict[str, tuple[int, int]] = {}
        self.outcomes = {"ok": 0, "lost": 0, "indeterminate": 0, "refused": 0}

    def _time(self) -> int:
        self.clock += 1
        return self.clock

    # -- issuing ------------------------------------------------------------------------

    def act(self, nodes: list[SimNode], now: int, rate: float) -> None:
        """Each idle client starts a request with probability ``rate``."""
        up = [n for n in nodes if n.up]
        # Clients believe whoever claims to lead, deposed leaders included.
        leaders = [n for n in up if n.role is Role.LEADER]
        for client in self.ids:
            if client in self.pending or self.rng.random() >= rate or not up:
                continue
            key = self.rng.choice(KEYS)
            if self.rng.random() < 0.4:
                self._read(client, key, self._read_target(up, leaders), now)
            elif leaders:
                self._write(client, key, self._write_target(leaders), now)

    def _read_target(self, up: list[SimNode], leaders: list[SimNode]) -> SimNode:
        """Half the reads go to a self-declared leader; when several claim it, a client
        with a stale leader cache picks the one of the oldest term half the time."""
        if not leaders or self.rng.random() < 0.5:
            return self.rng.choice(up)
        if len(leaders) > 1 and self.rng.random() < 0.5:
            return min(leaders, key=lambda n: (n.storage.hard_state.term, n.node_id))
        return self.rng.choice(leaders)

    def _write_target(self, leaders: list[SimNode]) -> SimNode:
        """Mostly the leader of the newest term (clients follow redirects); sometimes
        any self-declared leader, so deposed leaders get proposals too."""
        if self.rng.random() < 0.2:
            return self.rng.choice(leaders)
        return max(leaders, key=lambda n: (n.storage.hard_state.term, n.node_id))

    def _read(self, client: str, key: str, node: SimNode, now: int) -> None:
        assert node.raft is not None
        self.seq += 1
        context = f"{client}:{self.seq}".encode()
        if self.local_reads_bug:
            call = self._time()
            value = node.kv.data.get(key)
            self.history.append(Operation.read(client, key, value, call, self._time()))
            return
        try:
            node.raft.read_index(context)
        except ClusterError as exc:
            self.outcomes["refused"] += 1
            self.log(f"{client} read {key} at {node.node_id} refused: {exc.message}")
            return
        self.pending[client] = Pending(
            client, OpKind.READ, key, node.node_id, node.incarnation, self._time(),
            now + self.timeout_ticks, context=context,
        )
        self.log(f"{client} read {key} at {node.node_id} ctx={context.decode()}")

    def _write(self, client: str, key: str, node: SimNode, now: int) -> None:
        assert node.raft is not None
        self.seq += 1
        request_id = f"{client}-{self.seq}"
        value = f"{client}.{self.seq}"
        if self.rng.random() < 0.35:
            kind, op = OpKind.CAS, "cas"
            expected = self.seen.get((client, key))
        else:
            kind, op, expected = OpKind.WRITE, "write", None
        cmd = Command(request_id, client, op, key, value, expected)
        try:
            ticket = node.raft.propose(encode_command(cmd))
        except ClusterError as exc:
            self.outcomes["refused"] += 1
            self.log(f"{client} {op} {key} at {node.node_id} refused: {exc.message}")
            return
        self.tickets[request_id] = (ticket.index, ticket.term)
        self.pending[client] = Pending(
            client, kind, key, node.node_id, node.incarnation, self._time(),
            now + self.timeout_ticks, request_id, value, expected, ticket.index,
        )
        self.log(
            f"{client} {op} {key}={value} (expect {expected}) at {node.node_id} "
            f"ticket {ticket.term}/{ticket.index}"
        )

    # -- completing ---------------------------------------------------------------------

    def on_node_progress(self, node: SimNode) -> None:
        """``node`` applied entries or learnt read indexes: answer what it can."""
        for p in list(self.pending.values()):
            if p.node_id != node.node_id or p.incarnation != node.incarnation:
                continue
            if p.kind is OpKind.READ:
                index = node.read_waits.get(p.context)
                if index is not None and node.kv.applied >= index:
                    del node.read_waits[p.context]
                    self._finish_read(p, node.kv.data.get(p.key))
            elif node.kv.applied >= p.ticket_index:
                self._finish_write(p, node)

    def _finish_read(self, p: Pending, value: str | None) -> None:
        del self.pending[p.client_id]
        self.seen[(p.client_id, p.key)] = value
        self.history.append(Operation.read(p.client_id, p.key, value, p.call, self._time()))
        self.outcomes["ok"] += 1
        self.log(f"{p.client_id} read {p.key} -> {value}")

    def _finish_write(self, p: Pending, node: SimNode) -> None:
        del self.pending[p.client_id]
        if p.request_id not in node.kv.results:
            # Another entry won the ticket's index: this request never took effect.
            self.outcomes["lost"] += 1
            self.log(f"{p.client_id} {p.request_id} lost (index {p.ticket_index} taken)")
            return
        result = node.kv.results[p.request_id]
        ret = self._time()
        if p.kind is OpKind.WRITE:
            op = Operation.write(p.client_id, p.key, p.value, p.call, ret)
            self.seen[(p.client_id, p.key)] = p.value
        else:
            assert isinstance(result, bool)
            op = Operation.cas(p.client_id, p.key, p.expected, p.value, result, p.call, ret)
            if result:
                self.seen[(p.client_id, p.key)] = p.value
        self.history.append(op)
        self.outcomes["ok"] += 1
        self.log(f"{p.client_id} {p.request_id} done: {result}")

    def expire(self, nodes: dict[str, SimNode], now: float) -> None:
        """Time out requests past their deadline or whose node lost its memory."""
        for client, p in list(self.pending.items()):
            node = nodes[p.node_id]
            if now < p.deadline_tick and node.up and node.incarnation == p.incarnation:
                continue
            del self.pending[client]
            self.outcomes["indeterminate"] += 1
            self.log(f"{client} {p.request_id or p.context.decode()} indeterminate")
            if p.kind is OpKind.READ:
                continue  # a read with no answer constrains nothing
            self.history.append(
                Operation(
                    p.client_id, p.key, p.kind, value=p.value, expected=p.expected,
                    call=p.call, ret=math.inf, indeterminate=True,
                )
            )
            # The client no longer knows what the key holds.
            self.seen.pop((client, p.key), None)

    def drain(self, nodes: dict[str, SimNode]) -> None:
        """End of run: everything still open becomes indeterminate."""
        self.expire(nodes, now=math.inf)
