"""The faults the simulator injects between rounds, one per call, chosen at random.

Crashes strike at a random point of the Ready loop (before persisting, after
persisting but before sending, after sending but before applying, or between
Readies). Partitions are symmetric splits, isolated nodes, or one-way cuts.
Membership changes, leadership transfers and compactions are requested like an
operator or the runtime would, and refusals by the core are part of the game.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from edgelite.errors import ClusterError
from edgelite.raft.sim.node import CrashPoint, SimNode
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import ConfChange, ConfChangeKind, Role

if TYPE_CHECKING:
    from edgelite.raft.sim.world import World

__all__ = ["churn_restarts", "churn_step", "inject_fault"]

MAX_NODES = 9


def inject_fault(world: World) -> None:
    choices: list[tuple[int, Callable[[World], None]]] = [
        (3, crash), (4, restart), (2, partition), (2, isolate), (1, cut_one_way),
        (2, heal_network), (2, change_membership), (1, transfer), (3, compact), (1, pause),
        (1, leader_churn),
    ]
    total = sum(weight for weight, _ in choices)
    pick = world.rng.randrange(total)
    for weight, action in choices:
        if pick < weight:
            action(world)
            return
        pick -= weight


def _live(world: World) -> list[str]:
    return [n.node_id for n in world.up_nodes()]


def crash(world: World) -> None:
    up = world.up_nodes()
    if not up:
        return
    leader = world.leader()
    node = leader if leader is not None and world.rng.random() < 0.3 else world.rng.choice(up)
    busy = [n for n in up if n.raft is not None and n.raft.has_ready()]
    if busy and world.rng.random() < 0.5:
        node = world.rng.choice(busy)
    point = world.rng.choice([None, *CrashPoint])
    assert node.raft is not None
    world.log(f"FAULT crash {node.node_id} at {point.value if point else 'idle'}")
    world.count("crash")
    if point is not None and node.raft.has_ready():
        node.handle_ready(crash_at=point)
    else:
        node.crash()


def restart(world: World) -> None:
    down = [n for n in world.nodes.values() if not n.up and n.node_id not in world.retired]
    if not down:
        return
    node = world.rng.choice(down)
    world.log(f"FAULT restart {node.node_id}")
    world.count("restart")
    node.restart(world.rng)


def partition(world: World) -> None:
    ids = sorted(world.nodes)
    world.rng.shuffle(ids)
    cut = world.rng.randint(1, len(ids) - 1)
    groups = [sorted(ids[:cut]), sorted(ids[cut:])]
    world.log(f"FAULT partition {groups[0]} | {groups[1]}")
    world.count("partition")
    world.network.partition(groups)


def isolate(world: World) -> None:
    ids = sorted(world.nodes)
    leader = world.leader()
    victim = leader.node_id if leader and world.rng.random() < 0.7 else world.rng.choice(ids)
    world.log(f"FAULT isolate {victim}")
    world.count("partition")
    world.network.partition([[victim], [i for i in ids if i != victim]])


def cut_one_way(world: World) -> None:
    ids = sorted(world.nodes)
    src = world.rng.choice(ids)
    if world.rng.random() < 0.5:
        dst = world.rng.choice([i for i in ids if i != src])
        world.log(f"FAULT cut {src} -> {dst}")
        world.count("one_way_cut")
        world.network.cut(src, dst)
        return
    outbound = world.rng.random() < 0.5
    world.log(f"FAULT cut all {'outbound from' if outbound else 'inbound to'} {src}")
    world.count("one_way_cut")
    for other in ids:
        if other != src:
            world.network.cut(*((src, other) if outbound else (other, src)))


def heal_network(world: World) -> None:
    world.log("FAULT network heals")
    world.network.heal()


def change_membership(world: World) -> None:
    leader = world.leader()
    if leader is None:
        return
    conf = leader.conf
    voters, learners = sorted(conf.voters), sorted(conf.learners)
    spares = sorted(
        n for n in world.nodes if n not in conf.members and n not in world.retired
        and n not in world.retire_at
    )
    low = 2 if world.options.voters == 3 else 3
    high = world.options.voters + 1
    options: list[ConfChange] = []
    fresh = f"n{world.next_node}" if len(world.nodes) < MAX_NODES else None
    target = spares[0] if spares else fresh
    if target is not None:
        options.append(ConfChange(ConfChangeKind.ADD_LEARNER, target))
        if len(voters) < high:
            options.append(ConfChange(ConfChangeKind.ADD_VOTER, target))
    if learners:
        learner = world.rng.choice(learners)
        options.append(ConfChange(ConfChangeKind.REMOVE_LEARNER, learner))
        if len(voters) < high:
            options.append(ConfChange(ConfChangeKind.PROMOTE_LEARNER, learner))
    if len(voters) > low:
        options.append(ConfChange(ConfChangeKind.REMOVE_VOTER, world.rng.choice(voters)))
    if not options:
        return
    cc = world.rng.choice(options)
    if cc.node_id not in world.nodes:
        # A brand-new machine: empty storage, learns everything from the leader.
        created = world.new_id()
        assert created == cc.node_id, f"fresh id {created} != {cc.node_id}"
        world.add_node(cc.node_id, MemoryStorage())
        world.log(f"FAULT new node {cc.node_id} started")
        world.count("node_added")
    assert leader.raft is not None
    try:
        ticket = leader.raft.propose_conf_change(cc)
    except ClusterError as exc:
        world.log(f"FAULT conf change {cc.kind.value} {cc.node_id} refused: {exc.message}")
        return
    world.log(
        f"FAULT conf change {cc.kind.value} {cc.node_id} at {leader.node_id} "
        f"ticket {ticket.term}/{ticket.index}"
    )
    world.count("conf_change_proposed")


def transfer(world: World) -> None:
    leader = world.leader()
    if leader is None:
        return
    others = sorted(leader.conf.voters - {leader.node_id})
    if not others:
        return
    target = world.rng.choice(others)
    assert leader.raft is not None
    try:
        leader.raft.transfer_leadership(target)
    except ClusterError as exc:
        world.log(f"FAULT transfer {leader.node_id} -> {target} refused: {exc.message}")
        return
    world.log(f"FAULT transfer {leader.node_id} -> {target}")
    world.count("transfer")


def compact(world: World) -> None:
    up = [n for n in world.up_nodes() if n.role is not Role.LEADER or world.rng.random() < 0.7]
    if not up:
        return
    node = world.rng.choice(up)
    keep = world.rng.choice([0, 0, 2, 8])
    meta = node.take_snapshot(keep)
    if meta is not None:
        world.log(f"FAULT {node.node_id} snapshots at {meta.index}, keeps {keep} entries")
        world.count("snapshot_taken")


def pause(world: World) -> None:
    """Freeze a node (often the leader) for up to three election timeouts."""
    running = world.running_nodes()
    if not running:
        return
    leader = world.leader()
    node = leader if leader in running and world.rng.random() < 0.5 else world.rng.choice(running)
    ticks = world.rng.randint(5, 3 * world.profile.tuning.election_timeout_ticks)
    world.paused_until[node.node_id] = world.now + ticks
    world.log(f"FAULT pause {node.node_id} for {ticks} ticks")
    world.count("pause")


def leader_churn(world: World) -> None:
    """For a while, crash leaders in the middle of handling a Ready and restart crashed
    nodes quickly: elections follow each other with logs that diverge at the tail,
    the soil of the Figure 8 scenario (paper §5.4.2)."""
    ticks = world.rng.randint(30, 90)
    world.churn_until = world.now + ticks
    world.log(f"FAULT leader churn for {ticks} ticks")
    world.count("leader_churn")


def churn_step(world: World, node: SimNode) -> bool:
    """During churn: maybe crash leader ``node`` mid-Ready. True if it crashed."""
    if node.role is not Role.LEADER or world.rng.random() >= 0.3:
        return False
    point = world.rng.choice([CrashPoint.AFTER_PERSIST, CrashPoint.MID_SEND])
    world.log(f"FAULT churn crashes leader {node.node_id} at {point.value}")
    world.count("crash")
    return not node.handle_ready(crash_at=point)


def churn_restarts(world: World) -> None:
    for node in world.nodes.values():
        if not node.up and node.node_id not in world.retired and world.rng.random() < 0.15:
            world.log(f"FAULT churn restarts {node.node_id}")
            world.count("restart")
            node.restart(world.rng)
