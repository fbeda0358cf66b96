"""Cluster membership operations, run on the leader: join, add, remove, promote,
transfer, and the status of every member.

A node joins as a *learner* (it cannot affect quorums while it catches up); if it asked
to become a voter, the leader promotes it once it has replicated everything committed.
The wish is recorded in the membership change's context, so whichever node leads later
still honours it. One membership change at a time (the Raft core enforces it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

from edgelite.cluster.addresses import MemberAddress
from edgelite.errors import ClusterUnavailableError, ConfigError, ProtocolError
from edgelite.protocol.peer.messages import ForwardRequest
from edgelite.raft import ConfChange, ConfChangeKind, Role

if TYPE_CHECKING:
    from edgelite.cluster.runtime import ClusterRuntime

logger = logging.getLogger(__name__)

CHANGE_TIMEOUT_S = 30.0
PROMOTE_CHECK_INTERVAL_S = 0.2


def join_proof(secret: bytes, node_id: str) -> str:
    """What a joining node presents: it knows the cluster secret."""
    return hmac.new(secret, b"edgelite-join:" + node_id.encode(), hashlib.sha256).hexdigest()


async def _change(runtime: ClusterRuntime, change: ConfChange) -> int:
    member = runtime.member
    assert member is not None
    runtime.require_leader()
    try:
        async with asyncio.timeout(CHANGE_TIMEOUT_S):
            return await member.propose_conf_change(change)
    except TimeoutError:
        raise ClusterUnavailableError("the membership change did not commit in time") \
            from None


async def join(runtime: ClusterRuntime, body: dict[str, Any]) -> dict[str, Any]:
    """A new node asks to join: check its proof, add it as a learner."""
    node_id = _text(body, "node_id")
    secret = runtime.config.secret
    if secret is None:
        raise ConfigError("this cluster has no secret; nodes cannot join")
    if not hmac.compare_digest(_text(body, "proof"), join_proof(secret, node_id)):
        raise ProtocolError("the join proof does not match this cluster's secret")
    address = MemberAddress(node_id, peer=_text(body, "peer"),
                            http_url=str(body.get("http_url", "")),
                            admin_url=str(body.get("admin_url", "")),
                            location=str(body.get("location", "")))
    status = _status(runtime)
    if node_id not in status.conf_state.voters and node_id not in status.conf_state.learners:
        wants_voter = not bool(body.get("learner", False))
        await add(runtime, address, voter=wants_voter)
    return {"members": [a.to_json() for a in runtime.addresses.values()],
            "leader_id": runtime.config.node_id}


async def add(runtime: ClusterRuntime, address: MemberAddress, *, voter: bool) -> None:
    """Add ``address`` as a learner; a voter-to-be is promoted once it caught up."""
    context = dict(address.to_json(), wants_voter=voter)
    runtime.learn_addresses([address])
    await _change(runtime, ConfChange(ConfChangeKind.ADD_LEARNER, address.node_id,
                                      json.dumps(context).encode()))


async def remove(runtime: ClusterRuntime, node_id: str) -> None:
    status = _status(runtime)
    if node_id in status.conf_state.voters:
        kind = ConfChangeKind.REMOVE_VOTER
    elif node_id in status.conf_state.learners:
        kind = ConfChangeKind.REMOVE_LEARNER
    else:
        raise ProtocolError(f"node {node_id} is not a member")
    await _change(runtime, ConfChange(kind, node_id))


async def promote(runtime: ClusterRuntime, node_id: str) -> None:
    if node_id not in _status(runtime).conf_state.learners:
        raise ProtocolError(f"node {node_id} is not a learner")
    await _change(runtime, ConfChange(ConfChangeKind.PROMOTE_LEARNER, node_id))


async def transfer(runtime: ClusterRuntime, to: str) -> None:
    member = runtime.member
    assert member is not None
    runtime.require_leader()
    if to not in _status(runtime).conf_state.voters:
        raise ProtocolError(f"node {to} is not a voter")
    member.transfer_leadership(to)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CHANGE_TIMEOUT_S
    while member.leader_id != to:
        if loop.time() > deadline:
            raise ClusterUnavailableError(f"leadership did not move to {to} in time")
        await asyncio.sleep(0.05)


async def promote_caught_up_learners(runtime: ClusterRuntime) -> None:
    """Leader background task: promote learners that asked to be voters, once caught up."""
    while True:
        await asyncio.sleep(PROMOTE_CHECK_INTERVAL_S)
        member = runtime.member
        if member is None or member.role is not Role.LEADER:
            continue
        status = member.status()
        for node_id, progress in status.progress:
            wants = runtime.wants_voter.get(node_id, False)
            if progress.is_learner and wants and progress.match >= status.commit:
                try:
                    await promote(runtime, node_id)
                    logger.info("promoted learner %s to voter", node_id)
                except Exception as exc:  # retried on the next round
                    logger.info("promoting %s failed for now: %s", node_id, exc)


async def cluster_status(runtime: ClusterRuntime) -> dict[str, Any]:
    """The leader and every member with role, addresses, indexes and lag."""
    status = _status(runtime)
    leader_commit = status.commit
    members = sorted(status.conf_state.voters | status.conf_state.learners)
    infos = await asyncio.gather(*(_info(runtime, node_id) for node_id in members))
    rows = []
    for node_id, info in zip(members, infos, strict=True):
        address = runtime.addresses.get(node_id)
        applied = info.get("applied_index") if info else None
        rows.append({
            "id": node_id,
            "role": "voter" if node_id in status.conf_state.voters else "learner",
            "location": address.location if address else "",
            "peer_address": address.peer if address else "",
            "http_url": address.http_url if address else "",
            "admin_url": address.admin_url if address else "",
            "reachable": info is not None,
            "state": info.get("role") if info else None,
            "applied_index": applied,
            "commit_index": info.get("commit_index") if info else None,
            "lag": (leader_commit - applied) if isinstance(applied, int) else None,
        })
    return {"leader_id": status.leader_id, "term": status.term, "commit_index": leader_commit,
            "members": rows}


async def _info(runtime: ClusterRuntime, node_id: str) -> dict[str, Any] | None:
    if node_id == runtime.config.node_id:
        return runtime.local_info()
    try:
        reply = await runtime.ask_peer(node_id, ForwardRequest(0, "info", "", {}, b"", {}),
                                       timeout_s=1.0)
    except Exception:
        return None
    try:
        info = json.loads(reply.payload)
    except ValueError:
        return None
    if not isinstance(info, dict):
        return None
    if isinstance(info.get("address"), dict):  # learn URLs founders only know by peer
        runtime.learn_addresses([MemberAddress.from_json(info["address"])])
    return info


def _status(runtime: ClusterRuntime) -> Any:
    member = runtime.member
    assert member is not None
    return member.status()


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"field `{key}` must be a non-empty string")
    return value


APPLY_STALL_STEP_ASIDE_S = 5.0
STEP_ASIDE_CHECK_INTERVAL_S = 1.0


async def step_aside_while_stalled(runtime: ClusterRuntime) -> None:
    """Leader background task: a leader whose database cannot apply committed entries
    (its disk is full) serves no writes for that database; hand leadership to the most
    caught-up voter instead of holding the whole cluster's writes (F15). It applies the
    entries itself once space is back, as a follower."""
    while True:
        await asyncio.sleep(STEP_ASIDE_CHECK_INTERVAL_S)
        member = runtime.member
        if member is None or member.role is not Role.LEADER:
            continue
        stalled_s = runtime.node.apply_stalled_s()
        if stalled_s < APPLY_STALL_STEP_ASIDE_S:
            continue
        status = member.status()
        candidates = [(progress.match, node_id) for node_id, progress in status.progress
                      if node_id != runtime.node_id and node_id in status.conf_state.voters]
        if not candidates:
            continue  # the only voter: nobody to hand over to
        _, target = max(candidates)
        logger.warning("node %s: a database has waited %.0fs to apply committed entries "
                       "(disk full?); handing leadership to %s", runtime.node_id,
                       stalled_s, target)
        try:
            member.transfer_leadership(target)
        except Exception as exc:  # retried at the next check
            logger.warning("node %s: leadership transfer failed: %s", runtime.node_id, exc)
        await asyncio.sleep(APPLY_STALL_STEP_ASIDE_S)
