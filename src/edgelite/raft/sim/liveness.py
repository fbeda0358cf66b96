"""Healing and liveness: what must happen once the faults stop.

After :meth:`World.heal` (network repaired, crashed nodes restarted, faults paused),
within ``liveness_bound_ticks`` a leader must emerge and commit a fresh probe entry;
then every member must apply it within a catch-up bound that grows with what a
member may have to fetch. At the end of a run, :func:`converge` requires every
member to apply the leader's whole log and all key/value states to agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgelite.errors import ClusterError
from edgelite.raft.sim.kv import Command, encode_command
from edgelite.raft.sim.node import SimNode
from edgelite.raft.sim.oracle import InvariantViolation

if TYPE_CHECKING:
    from edgelite.raft.sim.world import World

__all__ = ["Probe", "await_liveness", "catchup_bound", "converge"]

# Healed network: one tick to deliver plus up to one of delay, each way; doubled.
_TICKS_PER_ROUND_TRIP_MAX = 8


@dataclass(frozen=True, slots=True)
class Probe:
    """A liveness probe entry proposed on ``node`` during its term ``term``."""

    node: SimNode
    incarnation: int
    term: int
    index: int
    request_id: str

    def stale(self, leader: SimNode) -> bool:
        """Must a new probe be proposed (leader changed, or this one was lost)?"""
        if leader is not self.node or leader.incarnation != self.incarnation:
            return True
        if leader.storage.hard_state.term != self.term:
            return True
        return leader.kv.applied >= self.index and self.request_id not in leader.kv.results


def await_liveness(world: World, client_rate: float) -> int:
    """After :meth:`World.heal`: within ``liveness_bound_ticks`` a leader must commit a
    fresh probe entry; then every member must apply it within a catch-up bound
    that grows with what a member may have to fetch (one entry or one snapshot
    chunk per round trip in the slowest profiles). Returns the ticks to commit."""
    start = world.now
    probe: Probe | None = None
    committed_at = 0
    catchup_ticks = 0
    while True:
        if not committed_at and world.now - start > world.options.liveness_bound_ticks:
            raise InvariantViolation(
                f"liveness: {world.now - start} ticks after healing, "
                + ("no leader" if probe is None else f"{probe.request_id} not committed")
                + "\n" + world.describe_nodes()
            )
        if committed_at and world.now - committed_at > catchup_ticks:
            assert probe is not None
            raise InvariantViolation(
                f"liveness: {probe.request_id} committed at {committed_at} but not "
                f"applied by every member {catchup_ticks} ticks later\n"
                + world.describe_nodes()
            )
        world.round(faults=False, client_rate=client_rate)
        leader = world.leader()
        if leader is None:
            continue
        if probe is None or probe.stale(leader):
            probe = _propose_probe(world, leader) or probe
            continue
        if not committed_at and probe.request_id in leader.kv.results:
            committed_at = world.now
            catchup_ticks = catchup_bound(world, leader, probe.index)
            world.log(f"LIVE: {probe.request_id} committed, {world.now - start} ticks")
        if committed_at and _probe_applied(world, leader, probe.index, probe.request_id):
            world.log(f"LIVE: {probe.request_id} applied everywhere, {world.now - start} ticks")
            return committed_at - start


def catchup_bound(world: World, leader: SimNode, index: int) -> int:
    chunk = world.profile.tuning.max_message_bytes
    snapshot_bytes = max((len(b) for b in leader.snapshot_blobs.values()), default=0)
    return world.options.liveness_bound_ticks + _TICKS_PER_ROUND_TRIP_MAX * (
        index + snapshot_bytes // chunk + 1
    )


def _propose_probe(world: World, leader: SimNode) -> Probe | None:
    assert leader.raft is not None
    world.probes += 1
    request_id = f"probe-{world.probes}"
    cmd = Command(request_id, "sim", "write", "_probe", str(world.probes))
    try:
        ticket = leader.raft.propose(encode_command(cmd))
    except ClusterError as exc:
        world.log(f"probe at {leader.node_id} refused: {exc.message}")
        return None
    world.clients.tickets[request_id] = (ticket.index, ticket.term)
    world.log(f"probe {request_id} at {leader.node_id} ticket {ticket.term}/{ticket.index}")
    return Probe(leader, leader.incarnation, ticket.term, ticket.index, request_id)


def _probe_applied(world: World, leader: SimNode, index: int, request_id: str) -> bool:
    members = sorted(leader.conf.members - world.retired)
    for node_id in members:
        node = world.nodes.get(node_id)
        if node is None or not node.up or node.kv.applied < index:
            return False
        if request_id not in node.kv.results:
            return False
    return True


def converge(world: World) -> None:
    """Quiet cluster: every member applies everything, and all states agree."""
    start = world.now
    bound = world.options.liveness_bound_ticks
    while True:
        leader = world.leader()
        if leader is not None and _all_applied(world, leader):
            break
        if leader is not None:
            bound = max(bound, catchup_bound(world, leader, leader.storage.last_index()))
        if world.now - start > bound:
            raise InvariantViolation(
                "liveness: members did not converge on one applied index\n"
                + world.describe_nodes()
            )
        world.round(faults=False, client_rate=0.0)
    assert leader is not None
    for node_id in sorted(leader.conf.members - world.retired):
        node = world.nodes[node_id]
        world.oracle.on_fingerprint(node_id, node.kv.applied, node.kv.fingerprint())


def _all_applied(world: World, leader: SimNode) -> bool:
    target = leader.storage.last_index()
    if leader.commit != target:
        return False
    return all(
        world.nodes[n].up and world.nodes[n].kv.applied == target
        for n in sorted(leader.conf.members - world.retired)
    )
