"""Real edgelite server processes on 127.0.0.1 for tests.

``start_server(tmp_path, ...)`` launches ``python -m edgelite.cli.main dev`` on free
ports, waits until ``GET /health`` answers, and returns a handle; ``stop()`` (SIGTERM,
then SIGKILL) and ``kill()`` (SIGKILL, a real crash) end it. Every process a test
starts is stopped by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    admin_port: int | None = None
    admin_key: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        assert self.admin_port is not None, "server was started without an admin listener"
        return f"http://127.0.0.1:{self.admin_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path,
                 timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not healthy after {timeout_s}s:\n{log_path.read_text()}")


def start_server(
    tmp_path: Path,
    *,
    auth_key_file: Path | None = None,
    namespaces: bool = False,
    admin: bool = False,
    admin_key: str | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    name: str = "server",
    port: int | None = None,
) -> ServerProcess:
    port = port if port is not None else free_port()
    data_dir = tmp_path / f"{name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = tmp_path / f"{name}.log"
    args = [sys.executable, "-m", "edgelite.cli.main", "dev", "--port", str(port),
            "--data-dir", str(data_dir)]
    if auth_key_file is not None:
        args += ["--auth-jwt-key-file", str(auth_key_file)]
    if namespaces:
        args += ["--enable-namespaces"]
    admin_port = None
    if admin:
        admin_port = free_port()
        args += ["--admin-listen", f"127.0.0.1:{admin_port}"]
        if admin_key:
            args += ["--admin-auth-key", admin_key]
    args += list(extra_args)
    process_env = dict(os.environ)
    process_env.update(env or {})
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT,
                                   env=process_env)
    server = ServerProcess(process, port, data_dir, log_path, admin_port, admin_key)
    try:
        wait_healthy(server.url, process, log_path)
    except BaseException:
        with contextlib.suppress(Exception):
            server.kill()
        raise
    return server
