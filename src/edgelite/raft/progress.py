"""What a leader knows about each follower's log, and how fast it may send to it.

Three states (etcd's flow control):

- PROBE: the leader does not know where the follower's log matches. It sends one
  AppendEntries and waits for the answer (or a heartbeat response) before sending the
  next one; a rejection moves ``next`` back using the follower's hint.
- REPLICATE: the log matches up to ``match``; the leader streams entries optimistically
  (``next`` runs ahead of ``match``), bounded by a window of in-flight messages.
- SNAPSHOT: the follower needs entries the leader compacted; the leader sends the
  snapshot in chunks, one at a time, and sends nothing else until it is done.
"""

from __future__ import annotations

import enum
from collections import deque

from edgelite.raft.types import SnapshotMeta

__all__ = ["Inflights", "Progress", "ProgressState"]


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """The last index of each AppendEntries in flight, oldest first, at most ``capacity``.

    Invariant: indexes strictly increase from oldest to newest.
    """

    __slots__ = ("_capacity", "_indexes")

    def __init__(self, capacity: int) -> None:
        assert capacity >= 1
        self._capacity = capacity
        self._indexes: deque[int] = deque()

    def add(self, last_index: int) -> None:
        assert not self.full(), "inflight window overflow"
        assert not self._indexes or self._indexes[-1] < last_index, (
            f"inflight {last_index} not after {self._indexes[-1]}"
        )
        self._indexes.append(last_index)

    def free_le(self, index: int) -> None:
        """Acknowledge every message whose last index is ``<= index``."""
        while self._indexes and self._indexes[0] <= index:
            self._indexes.popleft()

    def free_first(self) -> None:
        if self._indexes:
            self._indexes.popleft()

    def full(self) -> bool:
        return len(self._indexes) >= self._capacity

    def reset(self) -> None:
        self._indexes.clear()

    def __len__(self) -> int:
        return len(self._indexes)


class Progress:
    """A leader's view of one follower (or learner).

    Invariants: ``0 <= match < next``; ``state is SNAPSHOT`` iff ``pending_snapshot``
    is set; ``snapshot_acked_offset <= snapshot_sent_offset``.
    """

    __slots__ = (
        "inflights",
        "is_learner",
        "match",
        "next",
        "pending_snapshot",
        "probe_sent",
        "read_seq_acked",
        "recent_active",
        "snapshot_acked_offset",
        "snapshot_idle_ticks",
        "snapshot_sent_offset",
        "state",
    )

    def __init__(self, next_index: int, inflight_capacity: int, *, is_learner: bool) -> None:
        assert next_index >= 1
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflights = Inflights(inflight_capacity)
        self.is_learner = is_learner
        # Set when the follower answers anything; cleared by each CheckQuorum round.
        self.recent_active = False
        self.pending_snapshot: SnapshotMeta | None = None
        self.snapshot_acked_offset = 0
        self.snapshot_sent_offset = 0
        self.snapshot_idle_ticks = 0
        self.read_seq_acked = 0

    def check(self) -> None:
        assert 0 <= self.match < self.next, f"progress match={self.match} next={self.next}"
        assert (self.state is ProgressState.SNAPSHOT) == (self.pending_snapshot is not None)

    def become_probe(self) -> None:
        """Go back to probing; after a snapshot, probe right after the snapshot."""
        if self.state is ProgressState.SNAPSHOT and self.pending_snapshot is not None:
            self.next = max(self.match + 1, self.pending_snapshot.index + 1)
        else:
            self.next = self.match + 1
        self._reset(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next = self.match + 1
        self._reset(ProgressState.REPLICATE)

    def become_snapshot(self, meta: SnapshotMeta) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = meta

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.inflights.reset()
        self.pending_snapshot = None
        self.snapshot_acked_offset = 0
        self.snapshot_sent_offset = 0
        self.snapshot_idle_ticks = 0

    def maybe_update(self, index: int) -> bool:
        """The follower's log matches up to ``index``; False if that is old news."""
        if index <= self.match:
            return False
        self.match = index
        self.next = max(self.next, index + 1)
        self.probe_sent = False
        return True

    def maybe_decrease_to(self, rejected: int, probe_hint: int) -> bool:
        """Handle a rejection of the AppendEntries whose prev index was ``rejected``.

        ``probe_hint`` is the highest index that may match (from the follower's hint).
        Returns False for a stale rejection (one that says nothing new).
        """
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False  # an answer to an older probe
        self.next = max(min(rejected, probe_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def sent_entries(self, last_index: int, entry_count: int) -> None:
        """Record an AppendEntries ending at ``last_index`` carrying ``entry_count``."""
        if self.state is ProgressState.REPLICATE:
            if entry_count > 0:
                assert last_index + 1 > self.next - 1
                self.next = last_index + 1
                self.inflights.add(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True
        else:
            raise AssertionError("no AppendEntries while sending a snapshot")

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    def describe(self) -> str:
        text = f"match={self.match} next={self.next} {self.state.value}"
        if self.is_learner:
            text += " learner"
        if self.is_paused() and self.state is not ProgressState.SNAPSHOT:
            text += " paused"
        if self.inflights:
            text += f" inflight={len(self.inflights)}"
        if self.pending_snapshot is not None:
            text += (
                f" snapshot={self.pending_snapshot.index}"
                f" acked={self.snapshot_acked_offset}/{self.pending_snapshot.size_bytes}"
            )
        return text
