"""Real multi-node clusters on 127.0.0.1 for tests and benchmarks.

``Cluster.start(tmp_path, size=3)`` launches ``edgelite serve`` processes that bootstrap
one cluster, waits until a leader accepts writes, and offers helpers to find the
leader, kill (-9), stop (SIGSTOP) and restart members, and run SQL on any member.
Every process it starts is stopped by ``close()``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port


@dataclasses.dataclass
class Member:
    node_id: str
    data_dir: Path
    http_port: int
    peer_port: int
    admin_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    def __init__(self, root: Path, members: list[Member], secret_file: Path,
                 extra_args: tuple[str, ...], env: dict[str, str]) -> None:
        self.token: str | None = None  # sent by execute() when the cluster uses JWT auth
        self.root = root
        self.members = {m.node_id: m for m in members}
        self.secret_file = secret_file
        self.extra_args = extra_args
        self.env = env
        self.http = httpx.Client(timeout=10)

    @classmethod
    def start(cls, root: Path, size: int = 3, *, extra_args: tuple[str, ...] = (),
              env: dict[str, str] | None = None, wait: bool = True,
              token: str | None = None) -> Cluster:
        root.mkdir(parents=True, exist_ok=True)
        secret_file = root / "secret"
        secret_file.write_text(base64.b64encode(os.urandom(32)).decode())
        members = [Member(f"n{i}", root / f"n{i}", free_port(), free_port(), free_port(),
                          root / f"n{i}.log") for i in range(1, size + 1)]
        cluster = cls(root, members, secret_file, extra_args, dict(env or {}))
        cluster.token = token
        bootstrap = ",".join(f"{m.node_id}=127.0.0.1:{m.peer_port}" for m in members)
        for member in members:
            cluster.launch(member, ("--bootstrap", bootstrap))
        if wait:
            cluster.wait_for_leader()
        return cluster

    def launch(self, member: Member, how: tuple[str, ...] = ()) -> None:
        args = [sys.executable, "-m", "edgelite.cli.main", "serve", "--node-id",
                member.node_id, "--data-dir", str(member.data_dir),
                "--listen", f"127.0.0.1:{member.http_port}",
                "--peer-listen", f"127.0.0.1:{member.peer_port}",
                "--admin-listen", f"127.0.0.1:{member.admin_port}",
                "--cluster-secret-file", str(self.secret_file), "--log-level", "info",
                *how, *self.extra_args]
        env = {**os.environ, "EDGELITE_TICK_INTERVAL_MS": "50", **self.env}
        with open(member.log_path, "ab") as log:
            member.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                              env=env)

    def join(self, node_id: str, *, learner: bool = False, via: str | None = None) -> Member:
        member = Member(node_id, self.root / node_id, free_port(), free_port(), free_port(),
                        self.root / f"{node_id}.log")
        self.members[node_id] = member
        admin = self.members[via].admin_url if via else self.leader().admin_url
        self.launch(member, ("--join", admin, *(("--learner",) if learner else ())))
        return member

    # --- observing ---------------------------------------------------------------------------

    def status(self, node_id: str) -> dict[str, Any] | None:
        member = self.members[node_id]
        if not member.alive:
            return None
        try:
            response = self.http.get(member.admin_url + "/v1/cluster", timeout=3)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def leader(self, timeout_s: float = 20.0) -> Member:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node_id in self.members:
                status = self.status(node_id)
                if status and status.get("leader_id") in self.members:
                    leader = self.members[status["leader_id"]]
                    if leader.alive:
                        return leader
            time.sleep(0.1)
        raise TimeoutError(f"no leader within {timeout_s}s:\n{self.logs()}")

    def wait_for_leader(self, timeout_s: float = 30.0) -> Member:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError, httpx.HTTPError):
                leader = self.leader(timeout_s=2)
                if self.execute(leader, "SELECT 1").status_code == 200:
                    return leader
            time.sleep(0.1)
        raise TimeoutError(f"cluster not writable within {timeout_s}s:\n{self.logs()}")

    def wait_serving(self, member: Member, timeout_s: float = 30.0) -> None:
        """Until ``member`` answers on its client port (after a launch or restart)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get(member.url + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{member.node_id} not serving after {timeout_s}s")

    def logs(self) -> str:
        return "\n".join(f"--- {m.node_id}\n{m.log_path.read_text(errors='replace')[-3000:]}"
                         for m in self.members.values() if m.log_path.exists())

    # --- SQL ---------------------------------------------------------------------------------

    def execute(self, member: Member, sql: str, args: list[Any] | None = None, *,
                consistency: str = "strong", timeout_s: float = 10) -> httpx.Response:
        stmt: dict[str, Any] = {"sql": sql}
        if args:
            stmt["args"] = [_value(a) for a in args]
        body = {"requests": [{"type": "execute", "stmt": stmt}, {"type": "close"}]}
        headers = {"x-edgelite-consistency": consistency}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.post(member.url + "/v2/pipeline", json=body, timeout=timeout_s,
                              headers=headers)

    def rows(self, member: Member, sql: str, consistency: str = "strong") -> list[list[Any]]:
        response = self.execute(member, sql, consistency=consistency)
        assert response.status_code == 200, response.text
        result = response.json()["results"][0]
        assert result["type"] == "ok", result
        return [[_plain(v) for v in row] for row in result["response"]["result"]["rows"]]

    # --- faults ------------------------------------------------------------------------------

    def kill(self, node_id: str) -> None:
        member = self.members[node_id]
        if member.process is not None and member.process.poll() is None:
            member.process.kill()
            member.process.wait(timeout=10)

    def pause(self, node_id: str) -> None:
        assert self.members[node_id].process is not None
        self.members[node_id].process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]

    def resume(self, node_id: str) -> None:
        assert self.members[node_id].process is not None
        self.members[node_id].process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]

    def restart(self, node_id: str) -> None:
        self.kill(node_id)
        self.launch(self.members[node_id])

    def close(self) -> None:
        self.http.close()
        for member in self.members.values():
            process = member.process
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool | int):
        return {"type": "integer", "value": str(int(value))}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, bytes):
        return {"type": "blob", "base64": base64.b64encode(value).decode()}
    return {"type": "text", "value": str(value)}


def _plain(value: dict[str, Any]) -> Any:
    kind = value["type"]
    if kind == "null":
        return None
    if kind == "integer":
        return int(value["value"])
    if kind == "blob":
        data = value["base64"]
        return base64.b64decode(data + "=" * (-len(data) % 4))
    return value["value"]


__all__ = ["Cluster", "Member", "json"]
