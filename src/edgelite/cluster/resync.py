"""When a replica diverges: stop serving that database and copy it back from the leader.

A conflict while applying a committed entry (``DivergenceError``) means this replica's
copy of one database is not what the leader has; it is never "resolved" in place
(ARCHITECTURE §3). Instead:

1. the database stops serving (``Node.diverged``) and every later entry for it is held
   back, not applied;
2. this node asks the leader for a snapshot at or after the failed index (the leader
   waits until it has applied that far, then uses or takes one) and fetches it chunk by
   chunk into its own snapshot store, checksums verified;
3. only that database's file is replaced; the held-back entries above the copy's own
   applied index are applied; the database serves again.

The Raft log and the other databases are untouched throughout.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from edgelite.errors import ClusterUnavailableError
from edgelite.protocol.peer.messages import ForwardRequest, ForwardResponse
from edgelite.raft import ConfState, SnapshotMeta

if TYPE_CHECKING:
    from edgelite.cluster.runtime import ClusterRuntime

logger = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20
RETRY_S = 2.0


async def resync(runtime: ClusterRuntime, database: str, failed_index: int) -> None:
    """Repair ``database`` from the leader (runs until it succeeds or the node stops)."""
    while True:
        try:
            await _resync_once(runtime, database, failed_index)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("node %s: resync of %s failed (%s); retrying", runtime.node_id,
                           database, exc)
            await asyncio.sleep(RETRY_S)


async def _resync_once(runtime: ClusterRuntime, database: str, failed_index: int) -> None:
    member, snapshots = runtime.member, runtime.snapshots
    assert member is not None and snapshots is not None
    leader = member.leader_id
    if leader is None or leader == runtime.node_id:
        raise ClusterUnavailableError("no other leader to copy from")
    reply = await runtime.ask_peer(leader, ForwardRequest(
        0, "snapshot_request", "", {}, json.dumps({"min_index": failed_index}).encode(), {}),
        timeout_s=120)
    meta = _meta_from_json(json.loads(reply.payload))
    store = snapshots.store
    offset = await asyncio.to_thread(store.begin_receive, meta)
    while offset < meta.size_bytes:
        length = min(CHUNK_BYTES, meta.size_bytes - offset)
        request = {"id": meta.id, "offset": offset, "length": length}
        chunk = await runtime.ask_peer(leader, ForwardRequest(
            0, "snapshot_chunk", "", {}, json.dumps(request).encode(), {}), timeout_s=60)
        await asyncio.to_thread(store.write_chunk, meta.id, offset, chunk.payload)
        offset += len(chunk.payload)
    await asyncio.to_thread(store.finish_receive, meta.id)
    snapshot = store.open(meta.id)
    await runtime.node.replace_database(database, snapshot)
    logger.warning("node %s: %s was copied back from %s (snapshot %s)", runtime.node_id,
                   database, leader, meta.id)


async def serve_snapshot_request(runtime: ClusterRuntime,
                                 request: ForwardRequest) -> ForwardResponse:
    """Leader side: a snapshot at or after ``min_index`` for a diverged replica."""
    member, snapshots = runtime.member, runtime.snapshots
    assert member is not None and snapshots is not None
    min_index = int(json.loads(request.payload)["min_index"])
    await member.wait_applied(min_index, timeout_s=60)
    meta = snapshots.store.latest()
    if meta is None or meta.index < min_index:
        meta = await snapshots.take(member)
        if meta is None:
            meta = snapshots.store.latest()
    if meta is None or meta.index < min_index:
        raise ClusterUnavailableError(f"no snapshot at or after {min_index} could be made")
    return ForwardResponse(request.request_id, 200, json.dumps(_meta_to_json(meta)).encode(),
                           {})


def serve_snapshot_chunk(runtime: ClusterRuntime, request: ForwardRequest) -> ForwardResponse:
    snapshots = runtime.snapshots
    assert snapshots is not None
    wanted = json.loads(request.payload)
    length = min(int(wanted["length"]), CHUNK_BYTES)
    data = snapshots.read_chunk(str(wanted["id"]), int(wanted["offset"]), length)
    return ForwardResponse(request.request_id, 200, data, {})


def _meta_to_json(meta: SnapshotMeta) -> dict[str, Any]:
    return {"index": meta.index, "term": meta.term, "size_bytes": meta.size_bytes,
            "id": meta.id, "voters": sorted(meta.conf_state.voters),
            "learners": sorted(meta.conf_state.learners)}


def _meta_from_json(data: dict[str, Any]) -> SnapshotMeta:
    conf = ConfState(frozenset(data["voters"]), frozenset(data["learners"]))
    return SnapshotMeta(int(data["index"]), int(data["term"]), conf, int(data["size_bytes"]),
                        str(data["id"]))
