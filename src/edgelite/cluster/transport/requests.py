"""Outbound requests waiting for their reply: ids, futures, and how each one ends."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

from edgelite.errors import PeerRemoteError
from edgelite.protocol.peer import RpcBody, RpcFailure, RpcReply

__all__ = ["PendingRequests"]


@dataclasses.dataclass(slots=True)
class _Pending:
    peer_id: str
    future: asyncio.Future[RpcBody]


class PendingRequests:
    """Invariant: every entry's future is still undone, or is about to be removed by
    the ``request`` call that awaits it (which always removes its own entry)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def open(self, peer_id: str) -> tuple[int, asyncio.Future[RpcBody]]:
        rpc_id = next(self._ids)
        future: asyncio.Future[RpcBody] = asyncio.get_running_loop().create_future()
        self._pending[rpc_id] = _Pending(peer_id, future)
        return rpc_id, future

    def close(self, rpc_id: int) -> None:
        self._pending.pop(rpc_id, None)

    def resolve(self, peer_id: str, reply: RpcReply | RpcFailure) -> bool:
        """Complete the request ``reply`` answers; False if nobody waits for it (late,
        or an id this peer was never sent)."""
        pending = self._pending.get(reply.rpc_id)
        if pending is None or pending.peer_id != peer_id or pending.future.done():
            return False
        if isinstance(reply, RpcReply):
            pending.future.set_result(reply.body)
        else:
            pending.future.set_exception(PeerRemoteError(
                f"{peer_id} failed request {reply.rpc_id}: {reply.message}", peer_id=peer_id))
        return True

    def fail(self, rpc_id: int, error: Exception) -> None:
        pending = self._pending.pop(rpc_id, None)
        if pending is not None and not pending.future.done():
            pending.future.set_exception(error)

    def ids_for(self, peer_id: str | None = None) -> list[int]:
        """Pending request ids, all or those sent to ``peer_id``."""
        return [rpc_id for rpc_id, pending in self._pending.items()
                if peer_id is None or pending.peer_id == peer_id]

    def peer_of(self, rpc_id: int) -> str:
        return self._pending[rpc_id].peer_id
