"""The simulation's global knowledge, and the safety invariants checked against it.

The oracle sees what no single node can: every node's durable storage, every
leader ever elected, every entry ever reported committed or applied. Nodes call it
at the exact points of their Ready handling where an invariant must hold, and it
raises :class:`InvariantViolation` the moment one does not.

Invariants (Raft paper Figure 3, plus the Ready persistence contract):

* election safety: at most one leader per term;
* log matching: an (index, term) pair names one entry everywhere, with one
  predecessor term, so equal entries imply equal prefixes (by induction);
* leader completeness: a leader of term T holds every entry committed before T;
* state-machine safety: no two nodes apply different entries at one index, and
  their key/value states agree at every index where both took a snapshot;
* committed entries are never lost: once committed, an entry a node holds durably
  may only leave that node's log by being covered by a snapshot, two different
  entries are never both committed at one index, and a leader only advances its
  commit index over entries durable on a majority of its voters;
* persist-before-send: a vote, an append acknowledgement or a snapshot-chunk
  acknowledgement is only sent once the state it vouches for is durable;
* monotonicity: a node's durable term and commit never decrease, its vote never
  changes within a term, and commit/applied never decrease within one incarnation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edgelite.raft.errors import CompactedError, UnavailableError
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import Entry, HardState, SnapshotMeta

__all__ = ["InvariantViolation", "Oracle"]


class InvariantViolation(AssertionError):
    """A safety or liveness property failed; the message names which and where."""


def durable_term(storage: MemoryStorage, index: int) -> int | None:
    """Term of ``index`` in ``storage``; ``None`` if compacted away or absent."""
    try:
        return storage.term(index)
    except (CompactedError, UnavailableError):
        return None


@dataclass(slots=True)
class Oracle:
    """Global record of leaders, entries, commits and applies."""

    leaders: dict[int, str] = field(default_factory=dict)
    # (index, term) -> (kind name, data, predecessor's term)
    entries: dict[tuple[int, int], tuple[str, bytes, int]] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)  # index -> term
    commit_max: int = 0
    # term -> highest index some node, while in that term, reported committed
    committed_by_term: dict[int, int] = field(default_factory=dict)
    applied: dict[int, tuple[int, str, bytes]] = field(default_factory=dict)
    fingerprints: dict[int, str] = field(default_factory=dict)
    # request id -> (index, term) the proposer was promised
    tickets: dict[str, tuple[int, int]] = field(default_factory=dict)
    checks: int = 0

    def fail(self, text: str) -> None:
        raise InvariantViolation(text)

    # -- elections ----------------------------------------------------------------------

    def on_leader(self, node: str, term: int) -> None:
        """Election safety."""
        self.checks += 1
        other = self.leaders.setdefault(term, node)
        if other != node:
            self.fail(f"election safety: {other} and {node} are both leader of term {term}")

    def on_hard_state(self, node: str, before: HardState, after: HardState) -> None:
        """Durable term and commit monotonic; durable vote fixed within a term."""
        self.checks += 1
        if after.term < before.term:
            self.fail(f"{node}: durable term went back from {before.term} to {after.term}")
        if after.commit < before.commit:
            self.fail(f"{node}: durable commit went back from {before.commit} to {after.commit}")
        if after.term == before.term and before.vote is not None and after.vote != before.vote:
            self.fail(
                f"{node}: durable vote in term {after.term} changed from {before.vote} "
                f"to {after.vote}"
            )

    # -- log ----------------------------------------------------------------------------

    def on_entries_replaced(
        self, node: str, removed: Iterable[tuple[int, int]], covered_to: int
    ) -> None:
        """A node's log lost entries (truncation or snapshot install)."""
        for index, term in removed:
            self.checks += 1
            if index > covered_to and self.committed.get(index) == term:
                self.fail(
                    f"committed entry lost: {node} discarded committed entry {term}/{index} "
                    f"(its snapshot only covers up to {covered_to})"
                )

    def on_appended(self, node: str, storage: MemoryStorage, entries: Iterable[Entry]) -> None:
        """Log matching, checked entry by entry on what became durable."""
        for entry in entries:
            prev = durable_term(storage, entry.index - 1)
            if prev is None:
                continue
            self.checks += 1
            record = (entry.kind.name, entry.data, prev)
            known = self.entries.setdefault((entry.index, entry.term), record)
            if known != record:
                self.fail(
                    f"log matching: {node} holds {entry.term}/{entry.index} as "
                    f"{record[0]} {record[1]!r} after term {prev}, elsewhere it is "
                    f"{known[0]} {known[1]!r} after term {known[2]}"
                )

    def on_commit(self, node: str, storage: MemoryStorage, before: int, after: int) -> None:
        """Record newly committed indexes of ``node`` (in its durable term); they must
        agree with what every other node committed."""
        if after < before:
            self.fail(f"{node}: commit index went back from {before} to {after}")
        for index in range(before + 1, after + 1):
            term = durable_term(storage, index)
            if term is None:
                snap = storage.snapshot_meta()
                if snap is not None and index <= snap.index:
                    continue
                self.fail(f"{node}: committed index {index} is not in its durable log")
            assert term is not None
            self.checks += 1
            self._record_commit(node, index, term, storage.hard_state.term)

    def _record_commit(self, node: str, index: int, term: int, node_term: int) -> None:
        known = self.committed.setdefault(index, term)
        if known != term:
            self.fail(
                f"state machine safety: {node} committed {term}/{index} but "
                f"{known}/{index} was committed before"
            )
        self.commit_max = max(self.commit_max, index)
        if self.committed_by_term.get(node_term, 0) < index:
            self.committed_by_term[node_term] = index

    def check_leader_commit(
        self, node: str, index: int, term: int, leader_term: int,
        voter_sets: tuple[Iterable[str], Iterable[str]], storages: dict[str, MemoryStorage],
    ) -> None:
        """A leader advances its commit index only to an entry of its own term (paper
        §5.4.2, Figure 8) that is durable on a majority of its voters: of its current
        configuration, or of the one before it (a change takes effect when applied, so
        the core may count in the old one while the change is committed but not yet
        applied; single-server changes keep the two majorities intersecting)."""
        self.checks += 1
        if term != leader_term:
            self.fail(
                f"commit rule: leader {node} of term {leader_term} advanced its commit "
                f"index to {term}/{index}, an entry of an earlier term (Figure 8)"
            )
        counts = []
        for voters in map(sorted, voter_sets):
            holders = [v for v in voters if v in storages and _holds(storages[v], index, term)]
            if 2 * len(holders) > len(voters):
                return
            counts.append(f"{holders} of voters {voters}")
        self.fail(f"{node} committed {term}/{index} but it is durable only on " + ", or ".join(
            counts))

    def check_leader_complete(self, node: str, storage: MemoryStorage) -> None:
        """Leader completeness (paper §5.4): an entry committed in term U is in the log of
        every leader of a term after U. A node reporting a commit while in term U' >= U
        proves it committed by U', so the new leader of term T must hold everything
        reported committed in terms before T (log matching then covers the prefix)."""
        leader_term = storage.hard_state.term
        index = max(
            (i for t, i in self.committed_by_term.items() if t < leader_term), default=0
        )
        if not index:
            return
        self.checks += 1
        term = self.committed[index]
        if not _holds(storage, index, term):
            mine = durable_term(storage, index)
            self.fail(
                f"leader completeness: leader {node} lacks committed entry {term}/{index} "
                f"(it has term {mine} there, last index {storage.last_index()})"
            )

    # -- state machine ------------------------------------------------------------------

    def on_apply(self, node: str, entry: Entry) -> None:
        """State-machine safety: one entry per index, across all nodes and restarts."""
        self.checks += 1
        record = (entry.term, entry.kind.name, entry.data)
        known = self.applied.setdefault(entry.index, record)
        if known != record:
            self.fail(
                f"state machine safety: {node} applied {entry.term}/{entry.index} "
                f"{entry.kind.name} {entry.data!r}, another node applied "
                f"{known[0]}/{entry.index} {known[1]} {known[2]!r}"
            )
        committed = self.committed.get(entry.index)
        if committed is not None and committed != entry.term:
            self.fail(
                f"{node} applied {entry.term}/{entry.index} but {committed}/{entry.index} "
                "is the committed entry"
            )

    def on_request_applied(self, node: str, request_id: str, index: int, term: int) -> None:
        """A proposal lands exactly where its ticket said, or nowhere."""
        self.checks += 1
        promised = self.tickets.get(request_id)
        if promised is not None and promised != (index, term):
            self.fail(
                f"{node} applied request {request_id} at {term}/{index}, but its proposal "
                f"ticket promised {promised[1]}/{promised[0]}"
            )

    def on_fingerprint(self, node: str, index: int, fingerprint: str) -> None:
        """Key/value state at ``index`` must be the same on every node."""
        self.checks += 1
        known = self.fingerprints.setdefault(index, fingerprint)
        if known != fingerprint:
            self.fail(
                f"state machine safety: {node} state at index {index} is {fingerprint}, "
                f"another node had {known}"
            )

    def on_snapshot_installed(self, node: str, meta: SnapshotMeta, node_term: int) -> None:
        """A snapshot is taken of applied, hence committed, state."""
        self.checks += 1
        self._record_commit(node, meta.index, meta.term, node_term)


def _holds(storage: MemoryStorage, index: int, term: int) -> bool:
    """``storage`` durably holds (index, term), or a snapshot that covers it."""
    mine = durable_term(storage, index)
    if mine is not None:
        return mine == term
    snap = storage.snapshot_meta()
    return snap is not None and index <= snap.index and storage.first_index() > index
