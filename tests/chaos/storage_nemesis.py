"""Storage nemeses (mixed into ``Nemesis``): a full disk, failing fdatasync, a damaged
Raft log. See ``nemesis.py`` for the kinds and the rules every nemesis follows."""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from collections.abc import Callable

from edgelite.storage.raftlog.records import SEGMENT_HEADER_BYTES
from tests.chaos.context import RunContext
from tests.chaos.harness import ChaosCluster
from tests.support.cluster import Member

STARTUP_VERDICT_S = 8.0  # a member on a damaged log refuses to start within this


@dataclasses.dataclass
class Fault:
    kind: str
    nodes: frozenset[str]
    heal: Callable[[], None]
    until: float
    network: bool = False


class StorageFaults:
    """Needs the ``Nemesis`` attributes and helpers named below."""

    run: RunContext
    cluster: ChaosCluster
    rng: random.Random
    damaged: set[str]
    _storage_faults: int
    _new_ids: itertools.count[int]
    _leader: Callable[[], str | None]
    _free: Callable[[], list[str]]
    _voters: Callable[[], list[str]]
    _hold: Callable[..., float]

    # --- disks -----------------------------------------------------------------------------

    def _disk_full(self) -> Fault | None:
        candidates = [n for n in self.cluster.mounts if n in self._free()]
        if not candidates:
            return None
        node_id = self.rng.choice(candidates)
        leader = self._leader()
        first = not self._storage_faults
        self._storage_faults += 1
        if leader is not None and leader != node_id and (first or self.rng.random() < 0.5):
            response = self.cluster.admin("POST", "/v1/cluster/transfer", {"to": node_id},
                                          timeout_s=15)
            self.run.event(f"disk-full: transfer to {node_id}: HTTP {response.status_code}")
        size = self.cluster.fill_disk(node_id)
        self.run.event(f"disk-full: {node_id} filled with {size >> 10} KiB")

        def heal() -> None:
            self.cluster.free_disk(node_id)
            self._restart_if_exited(node_id)

        return Fault("disk-full", frozenset([node_id]), heal, self._hold())

    def _fsync_fail(self) -> Fault | None:
        if not self.cluster.fiu:
            return None
        leader = self._leader()
        free = self._free()
        if not free:
            return None
        first = not self._storage_faults
        self._storage_faults += 1
        node_id = leader if leader in free and (first or self.rng.random() < 0.5) else \
            self.rng.choice(free)
        self.cluster.fsync_fault(node_id, True)
        self.run.event(f"fsync-fail: fdatasync fails in {node_id}")

        def heal() -> None:
            self.cluster.fsync_fault(node_id, False)
            self._restart_if_exited(node_id)

        return Fault("fsync-fail", frozenset([node_id]), heal, self._hold())

    def _corrupt_log(self) -> Fault | None:
        leader = self._leader()
        voters = self._voters()
        choices = [n for n in self._free() if n != leader and n in voters]
        healthy = all(self.cluster.members[n].alive for n in voters if n in self.cluster.members)
        if leader is None or not choices or len(voters) < 3 or not healthy or \
                self.damaged - self.cluster.removed:
            return None  # losing one more voter for good could cost the quorum
        node_id = self.rng.choice(choices)
        self.cluster.kill(node_id)
        segments = sorted((self.cluster.members[node_id].data_dir / "raft").glob("*.seg"))
        if not segments or segments[0].stat().st_size < 4096:
            self.cluster.restart(node_id)
            return None
        path = segments[0]
        offset = self.rng.randrange(SEGMENT_HEADER_BYTES, path.stat().st_size * 2 // 3)
        with open(path, "r+b") as file:
            file.seek(offset)
            byte = file.read(1)
            file.seek(offset)
            file.write(bytes([byte[0] ^ (1 << self.rng.randrange(8))]))
        self.cluster.restart(node_id)
        self.run.event(f"corrupt-log: {node_id} restarted with one bit flipped at byte "
                       f"{offset} of {path.name} ({path.stat().st_size} bytes)")

        def heal() -> None:
            member = self.cluster.members[node_id]
            deadline = time.monotonic() + STARTUP_VERDICT_S
            while member.alive and time.monotonic() < deadline:
                time.sleep(0.1)  # recovery reads the whole log: give it time to decide
            if member.alive:
                self.run.event(f"corrupt-log: {node_id} is running on its damaged log")
                return
            assert member.process is not None
            self.run.event(f"corrupt-log: {node_id} refused to start (exit "
                           f"{member.process.returncode}); replacing it")
            self.damaged.add(node_id)
            self._replace_damaged()

        return Fault("corrupt-log", frozenset([node_id]), heal, self._hold(3.0))

    def _replace_damaged(self) -> None:
        """Remove members that cannot start from the cluster; join a fresh one each."""
        for node_id in sorted(self.damaged - self.cluster.removed):
            try:
                response = self.cluster.admin("DELETE", f"/v1/cluster/members/{node_id}",
                                              timeout_s=15)
            except Exception as exc:
                self.run.event(f"remove damaged {node_id}: {type(exc).__name__}: {exc}")
                continue
            self.run.event(f"remove damaged {node_id}: HTTP {response.status_code}")
            if response.status_code == 200:
                self.cluster.mark_removed(node_id)
                fresh = self.cluster.join(f"n{next(self._new_ids)}")
                self.run.event(f"join {fresh.node_id} as a voter in place of {node_id}")

    def _restart_if_exited(self, node_id: str) -> None:
        member: Member = self.cluster.members[node_id]
        if member.process is not None and not member.alive:
            self.run.event(f"{node_id} had exited (code {member.process.returncode}); "
                           "restarting it like a supervisor would")
            self.cluster.restart(node_id)



__all__ = ["Fault", "StorageFaults"]
