"""The leader's queue of ReadIndex requests (Raft thesis §6.4).

A read is registered with the leader's commit index at that moment and a round number
``seq``. The leader then sends a heartbeat carrying ``seq``; once a majority of voters
has answered a heartbeat of round ``>= seq`` in the current term, nobody else can have
been leader meanwhile, so the commit index recorded is at least as new as any write
acknowledged before the read began: the read is released.

Reads that arrive before the leader committed an entry of its own term are *deferred*:
its commit index may lag behind writes acknowledged by the previous leader (Redis-Raft
PR #22). They are registered when that first commit happens.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from edgelite.raft.types import NodeId

__all__ = ["ReadIndexQueue", "ReadRequest"]


@dataclass(frozen=True, slots=True)
class ReadRequest:
    context: bytes
    requester: NodeId
    index: int
    seq: int


class ReadIndexQueue:
    """Pending and deferred reads, oldest first, at most ``capacity`` in total.

    Invariant: ``pending`` seqs strictly increase; each pending index is ``<=`` the
    leader's commit index.
    """

    __slots__ = ("_capacity", "_deferred", "_next_seq", "_pending")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._pending: deque[ReadRequest] = deque()
        self._deferred: deque[tuple[bytes, NodeId]] = deque()
        self._next_seq = 1

    def __len__(self) -> int:
        return len(self._pending) + len(self._deferred)

    def full(self) -> bool:
        return len(self) >= self._capacity

    def defer(self, context: bytes, requester: NodeId) -> None:
        assert not self.full()
        self._deferred.append((context, requester))

    def take_deferred(self) -> list[tuple[bytes, NodeId]]:
        deferred = list(self._deferred)
        self._deferred.clear()
        return deferred

    def add(self, context: bytes, requester: NodeId, index: int) -> int:
        """Register a read at ``index``; returns its round number."""
        seq = self._next_seq
        self._next_seq += 1
        self._pending.append(ReadRequest(context, requester, index, seq))
        return seq

    def last_seq(self) -> int:
        """Round number of the newest pending read (0: none pending)."""
        return self._pending[-1].seq if self._pending else 0

    def release(self, confirmed_seq: int) -> list[ReadRequest]:
        """Remove and return the reads whose round a quorum confirmed."""
        released: list[ReadRequest] = []
        while self._pending and self._pending[0].seq <= confirmed_seq:
            released.append(self._pending.popleft())
        return released

    def clear(self) -> None:
        self._pending.clear()
        self._deferred.clear()
