"""A real cluster whose peer links all run through a ``PeerRouter``, plus what the
nemeses and checkers need from it: who is paused, who leads right now (asked of every
member at once, so a partitioned or paused member costs one short timeout, not one per
member), membership changes, optional tmpfs data directories (disk-full nemesis) and
optional libfiu wrapping (fsync-failure nemesis).

Built on ``tests.support.cluster.Cluster`` without changing it: each member gets a
relay port, advertised with ``--peer-advertise`` (also after restarts), and founders
bootstrap with relay addresses.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.router import PeerRouter
from tests.support.cluster import Cluster, Member
from tests.support.processes import free_port

STATUS_TIMEOUT_S = 2.0
# Shorter than the product defaults so that faults resolve within a short run; the
# relations stay those of the defaults (commit < forward, client timeout above both).
CHAOS_ENV = {
    "EDGELITE_TICK_INTERVAL_MS": "50",
    "EDGELITE_COMMIT_TIMEOUT_S": "4",
    "EDGELITE_FORWARD_TIMEOUT_S": "5",
    "EDGELITE_LEADER_WAIT_S": "3",
    # Snapshot and compact often, so restarted and new members catch up by snapshot
    # (F13; jepsen.etcd lowers its snapshot count the same way).
    "EDGELITE_SNAPSHOT_ENTRIES": "200",
    "EDGELITE_SNAPSHOT_TRAILING_ENTRIES": "20",
    "EDGELITE_RETAIN_ENTRIES": "0",  # no sync retention: compaction as above
}
FIU_FAULT = "posix/io/sync/fdatasync"


class ChaosCluster(Cluster):
    """``Cluster`` with every peer link through ``router``."""

    router: PeerRouter

    @classmethod
    def launch_routed(cls, root: Path, size: int, router: PeerRouter, *,
                      env: dict[str, str] | None = None, tmpfs_nodes: tuple[str, ...] = (),
                      tmpfs_bytes: int = 128 << 20, fiu: bool = False,
                      extra_args: tuple[str, ...] = ()) -> ChaosCluster:
        root.mkdir(parents=True, exist_ok=True)
        secret_file = root / "secret"
        secret_file.write_text(base64.b64encode(os.urandom(32)).decode())
        members = [Member(f"n{i}", root / f"n{i}", free_port(), free_port(), free_port(),
                          root / f"n{i}.log") for i in range(1, size + 1)]
        cluster = cls(root, members, secret_file, extra_args, {**CHAOS_ENV, **(env or {})})
        cluster.setup(router, fiu=fiu)
        try:
            for node_id in tmpfs_nodes:
                cluster.mount_tmpfs(node_id, tmpfs_bytes)
            bootstrap = ",".join(f"{m.node_id}=127.0.0.1:{router.route(m.node_id, m.peer_port)}"
                                 for m in members)
            for member in members:
                cluster.launch(member, ("--bootstrap", bootstrap))
            cluster.wait_for_leader()
        except BaseException:
            cluster.close()
            raise
        return cluster

    def setup(self, router: PeerRouter, *, fiu: bool) -> None:
        self.router = router
        self.paused: set[str] = set()
        self.removed: set[str] = set()
        self.joiners: dict[str, bool] = {}  # launched with --join: node id -> learner
        self.mounts: dict[str, Path] = {}
        self.fiu = fiu
        self.state_lock = threading.RLock()
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="status")

    # --- processes ---------------------------------------------------------------------

    def launch(self, member: Member, how: tuple[str, ...] = ()) -> None:
        """Like ``Cluster.launch``, advertising the relay port (and under ``fiu-run``
        when the fsync nemesis needs libfiu preloaded; its faults stay off until
        ``fsync_fault``)."""
        port = self.router.route(member.node_id, member.peer_port)
        args = [sys.executable, "-m", "edgelite.cli.main", "serve", "--node-id",
                member.node_id, "--data-dir", str(member.data_dir),
                "--listen", f"127.0.0.1:{member.http_port}",
                "--peer-listen", f"127.0.0.1:{member.peer_port}",
                "--peer-advertise", f"127.0.0.1:{port}",
                "--admin-listen", f"127.0.0.1:{member.admin_port}",
                "--cluster-secret-file", str(self.secret_file), "--log-level", "info",
                *how, *self.extra_args]
        if self.fiu:
            args = ["fiu-run", "-x", *args]
        env = {**os.environ, **self.env}
        with open(member.log_path, "ab") as log:
            member.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                              env=env)

    def join(self, node_id: str, *, learner: bool = False, via: str | None = None) -> Member:
        member = Member(node_id, self.root / node_id, free_port(), free_port(), free_port(),
                        self.root / f"{node_id}.log")
        leader = self.members[via] if via else self.leader_now()
        if leader is None:
            raise TimeoutError("no leader to join through")
        with self.state_lock:
            self.members[node_id] = member
            self.joiners[node_id] = learner
        self.launch(member, ("--join", leader.admin_url, *(("--learner",) if learner else ())))
        return member

    def pause(self, node_id: str) -> None:
        with self.state_lock:
            self.paused.add(node_id)
        super().pause(node_id)

    def resume(self, node_id: str) -> None:
        super().resume(node_id)
        with self.state_lock:
            self.paused.discard(node_id)

    def kill(self, node_id: str) -> None:
        member = self.members[node_id]
        if member.process is not None and member.process.poll() is None:
            member.process.kill()  # SIGKILL works on a stopped process too
            member.process.wait(timeout=10)
        with self.state_lock:
            self.paused.discard(node_id)

    def restart(self, node_id: str) -> None:
        """Kill and start again. A member that was launched to join is started with
        ``--join`` again (through any live member): if it was killed before its join
        completed it must ask again, and once it is a member the flag is ignored."""
        self.kill(node_id)
        how: tuple[str, ...] = ()
        if node_id in self.joiners:
            via = next((m for m in self.live() if m.node_id != node_id), None)
            if via is not None:
                how = ("--join", via.admin_url,
                       *(("--learner",) if self.joiners[node_id] else ()))
        self.launch(self.members[node_id], how)

    def live(self) -> list[Member]:
        """Running, not paused, not removed: members that can answer."""
        with self.state_lock:
            return [m for m in self.members.values()
                    if m.alive and m.node_id not in self.paused
                    and m.node_id not in self.removed]

    def in_cluster(self) -> list[str]:
        with self.state_lock:
            return [n for n in self.members if n not in self.removed]

    # --- observing ---------------------------------------------------------------------

    def status(self, node_id: str) -> dict[str, Any] | None:
        if node_id in self.paused:
            return None
        member = self.members[node_id]
        if not member.alive:
            return None
        try:
            response = httpx.get(member.admin_url + "/v1/cluster", timeout=STATUS_TIMEOUT_S)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def statuses(self) -> dict[str, dict[str, Any]]:
        """``/v1/cluster`` of every live member, asked concurrently."""
        members = self.live()
        answers = self._pool.map(lambda m: self.status(m.node_id), members)
        return {m.node_id: s for m, s in zip(members, answers, strict=True) if s}

    def leader_now(self) -> Member | None:
        """The leader named by the member with the highest term, if it is live."""
        best: tuple[int, str] | None = None
        for status in self.statuses().values():
            leader_id = status.get("leader_id")
            if leader_id and (best is None or status["term"] > best[0]):
                best = (status["term"], leader_id)
        if best is None or best[1] not in self.members:
            return None
        leader = self.members[best[1]]
        return leader if leader in self.live() else None

    def leader(self, timeout_s: float = 20.0) -> Member:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leader = self.leader_now()
            if leader is not None:
                return leader
            time.sleep(0.1)
        raise TimeoutError(f"no leader within {timeout_s}s:\n{self.logs()}")

    def content_hashes(self, namespace: str = "default") -> dict[str, tuple[int, str]]:
        def ask(member: Member) -> tuple[int, str] | None:
            try:
                response = httpx.get(f"{member.admin_url}/v1/namespaces/{namespace}/hash",
                                     timeout=10)
            except httpx.HTTPError:
                return None
            if response.status_code != 200:
                return None
            body = response.json()
            return int(body["applied_index"]), str(body["hash"])

        members = self.live()
        answers = self._pool.map(ask, members)
        return {m.node_id: a for m, a in zip(members, answers, strict=True) if a}

    # --- membership --------------------------------------------------------------------

    def admin(self, method: str, path: str, json: Any = None,
              timeout_s: float = 40.0) -> httpx.Response:
        """An admin call through any live member (it forwards to the leader)."""
        leader = self.leader_now()
        target = leader or next(iter(self.live()), None)
        if target is None:
            raise TimeoutError("no live member for an admin call")
        return httpx.request(method, target.admin_url + path, json=json, timeout=timeout_s)

    def mark_removed(self, node_id: str) -> None:
        with self.state_lock:
            self.removed.add(node_id)

    # --- disks ---------------------------------------------------------------------------

    def mount_tmpfs(self, node_id: str, size_bytes: int) -> None:
        path = self.members[node_id].data_dir
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs",
                        str(path)], check=True, capture_output=True, timeout=30)
        self.mounts[node_id] = path

    def fill_disk(self, node_id: str) -> int:
        """Write a balloon file until the node's tmpfs is full; its size in bytes."""
        balloon = self.mounts[node_id] / "balloon"
        written = 0
        chunk = b"\0" * (1 << 20)
        with open(balloon, "ab", buffering=0) as file:
            with contextlib.suppress(OSError):
                while True:
                    written += file.write(chunk)
            with contextlib.suppress(OSError):  # the last few KiB too
                while True:
                    written += file.write(b"\0" * 4096)
        return written

    def free_disk(self, node_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.mounts[node_id] / "balloon").unlink()

    def fsync_fault(self, node_id: str, on: bool) -> None:
        process = self.members[node_id].process
        if process is None or process.poll() is not None:
            return
        verb = "enable" if on else "disable"
        subprocess.run(["fiu-ctrl", "-c", f"{verb} name={FIU_FAULT}", str(process.pid)],
                       check=False, capture_output=True, timeout=30)

    # --- end -----------------------------------------------------------------------------

    def close(self) -> None:
        for node_id in list(self.paused):
            with contextlib.suppress(Exception):
                super().resume(node_id)
        super().close()
        self._pool.shutdown(wait=False)
        for path in self.mounts.values():
            subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True,
                           timeout=30)
        self.mounts.clear()


def root_can_mount(scratch: Path) -> bool:
    """Whether this process may mount a tmpfs (root, and mount(8) works here)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target = scratch / "probe-mount"
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)],
                          capture_output=True, timeout=30)
    if done.returncode != 0:
        return False
    subprocess.run(["umount", str(target)], capture_output=True, timeout=30)
    return True


__all__ = ["CHAOS_ENV", "ChaosCluster", "root_can_mount"]
