"""Servers, tokens and node scripts for the compatibility suite.

The suite runs unmodified libSQL/Turso clients against a real server process. By
default that process is edgelite (``tests.support.processes.start_server``). Setting
``EDGELITE_COMPAT_TARGET=sqld:/path/to/sqld`` starts the reference server instead, so
the same tests can be checked against sqld (differential runs; CI never does this).

Node scripts (``tests/compat/js/*.mjs``) get their configuration as JSON in the
``COMPAT_CONFIG`` environment variable and print exactly one JSON document on stdout:
the observations of each scenario. All assertions live in Python.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.processes import free_port, start_server, wait_healthy

JS_DIR = Path(__file__).parent / "js"
TARGET_ENV = "EDGELITE_COMPAT_TARGET"
ADMIN_KEY = "compat-admin-key"
# sqld has no flag for the HTTP stream idle expiry; it is fixed at 10 s.
SQLD_STREAM_EXPIRY_S = 10.0
NODE_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class Target:
    """Which server binary the suite starts: edgelite (default) or a sqld executable."""

    kind: str
    sqld_path: Path | None = None

    @staticmethod
    def from_env() -> Target:
        raw = os.environ.get(TARGET_ENV, "edgelite").strip()
        if raw in ("", "edgelite"):
            return Target("edgelite")
        if raw.startswith("sqld:"):
            path = Path(raw.removeprefix("sqld:")).expanduser()
            if not path.is_file():
                raise RuntimeError(f"{TARGET_ENV}={raw}: no sqld executable at {path}")
            return Target("sqld", path)
        raise RuntimeError(f"{TARGET_ENV}={raw!r}: expected 'edgelite' or 'sqld:/path/to/sqld'")

    @property
    def is_sqld(self) -> bool:
        return self.kind == "sqld"


@dataclasses.dataclass(frozen=True)
class ServerMode:
    """How a compat server is configured. Every server also runs the admin listener."""

    name: str
    auth: bool = False
    namespaces: bool = False
    stream_idle_timeout_s: int | None = None
    # Advertise the server's own URL as `base_url` (sticky streams, protocol.md §3.6).
    self_url: bool = False


PLAIN = ServerMode("plain")
JWT = ServerMode("jwt", auth=True)
NAMESPACES = ServerMode("ns", namespaces=True)
NAMESPACES_JWT = ServerMode("ns_jwt", auth=True, namespaces=True)
SHORT_EXPIRY = ServerMode("expiry", stream_idle_timeout_s=1)
SELF_URL = ServerMode("self_url", self_url=True)


class KeyPair:
    """An Ed25519 key pair that signs JWTs with sqld's claims (``a``, ``p``, ``id``, ``exp``)."""

    def __init__(self) -> None:
        self.private_key = Ed25519PrivateKey.generate()

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(self, **claims: Any) -> str:
        return jwt.encode(claims, self.private_key, algorithm="EdDSA")


@dataclasses.dataclass(frozen=True)
class AuthKeys:
    """The server trusts ``primary`` and ``rotated`` (two PEM blocks in one key file);
    ``stranger`` is a key the server has never seen."""

    primary: KeyPair
    rotated: KeyPair
    stranger: KeyPair

    @staticmethod
    def generate() -> AuthKeys:
        return AuthKeys(KeyPair(), KeyPair(), KeyPair())

    def write_key_file(self, path: Path) -> Path:
        path.write_bytes(self.primary.public_pem + self.rotated.public_pem)
        return path

    def rw_token(self) -> str:
        return self.primary.token(a="rw")

    def ro_token(self) -> str:
        return self.primary.token(a="ro")

    def expired_token(self) -> str:
        # Far beyond sqld's 60 s validation leeway.
        return self.primary.token(a="rw", exp=int(time.time()) - 3600)

    def script_tokens(self) -> dict[str, str]:
        """The ``tokens`` entry of a node script's config (auth scenarios)."""
        return {"stranger": self.stranger.token(a="rw"), "expired": self.expired_token(),
                "readOnly": self.ro_token(), "rotated": self.rotated.token(a="rw")}


@dataclasses.dataclass
class CompatServer:
    """A running server of either kind, with the addresses and credentials tests need."""

    target: Target
    mode: ServerMode
    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    log_path: Path
    keys: AuthKeys | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def stream_expiry_s(self) -> float:
        if self.target.is_sqld:
            return SQLD_STREAM_EXPIRY_S
        if self.mode.stream_idle_timeout_s is not None:
            return float(self.mode.stream_idle_timeout_s)
        return 30.0

    def host_for(self, namespace: str | None) -> str:
        """Host (with port) whose first label selects ``namespace``; ``localhost`` = default."""
        return f"{namespace}.localhost:{self.port}" if namespace else f"localhost:{self.port}"

    def token(self) -> str | None:
        """A valid read-write token when auth is on, else None."""
        return self.keys.rw_token() if self.keys else None

    def auth_headers(self) -> dict[str, str]:
        token = self.token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Basic {ADMIN_KEY}", **kwargs.pop("headers", {})}
        with httpx.Client(base_url=self.admin_url, timeout=30) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def create_namespace(self, name: str) -> None:
        response = self.admin("POST", f"/v1/namespaces/{name}/create", json={})
        assert response.status_code == 200, (name, response.status_code, response.text)

    def live_streams(self) -> list[str]:
        """Hrana-over-HTTP streams the server still holds (admin ``/v1/diagnostics``:
        one string per stream; sqld keeps ``"expired"`` tombstones, which hold nothing)."""
        response = self.admin("GET", "/v1/diagnostics")
        assert response.status_code == 200, (response.status_code, response.text)
        entries = response.json()
        assert isinstance(entries, list), entries
        return [entry for entry in entries if entry != "expired"]

    def assert_no_new_streams(self, count_before: int) -> None:
        """No stream outlives the client that opened it. ``<=`` rather than ``==``: a
        stream some earlier test abandoned may idle-expire meanwhile."""
        after = self.live_streams()
        assert len(after) <= count_before, (
            f"{len(after) - count_before} stream(s) left open: {after}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_compat_server(
    target: Target, mode: ServerMode, work_dir: Path, keys: AuthKeys | None
) -> CompatServer:
    """Start a server for ``mode`` under ``work_dir`` and wait until it is healthy."""
    assert mode.auth == (keys is not None), "auth modes need keys, others must not get any"
    work_dir.mkdir(parents=True, exist_ok=True)
    key_file = keys.write_key_file(work_dir / "jwt_public.pem") if keys else None
    if target.is_sqld:
        return _start_sqld(target, mode, work_dir, keys, key_file)
    extra: tuple[str, ...] = ()
    if mode.stream_idle_timeout_s is not None:
        extra += ("--stream-idle-timeout-s", str(mode.stream_idle_timeout_s))
    if mode.self_url:
        return _start_edgelite_with_self_url(target, mode, work_dir, key_file, extra)
    server = start_server(
        work_dir, auth_key_file=key_file, namespaces=mode.namespaces, admin=True,
        admin_key=ADMIN_KEY, extra_args=extra, name=f"edgelite-{mode.name}",
    )
    assert server.admin_port is not None
    return CompatServer(target, mode, server.process, server.port, server.admin_port,
                        server.log_path, keys)


def _start_edgelite_with_self_url(target: Target, mode: ServerMode, work_dir: Path,
                                  key_file: Path | None, extra: tuple[str, ...]
                                  ) -> CompatServer:
    """Like ``start_server``, but the port is chosen first so ``--self-url`` can name it
    (start_server picks its port internally)."""
    assert key_file is None and not mode.namespaces, "self_url mode is plain"
    port, admin_port = free_port(), free_port()
    data_dir = work_dir / f"edgelite-{mode.name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / f"edgelite-{mode.name}.log"
    args = [sys.executable, "-m", "edgelite.cli.main", "dev", "--port", str(port),
            "--data-dir", str(data_dir), "--admin-listen", f"127.0.0.1:{admin_port}",
            "--admin-auth-key", ADMIN_KEY, "--self-url", f"http://127.0.0.1:{port}", *extra]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
    _wait_or_kill(process, port, log_path)
    return CompatServer(target, mode, process, port, admin_port, log_path, None)


def _wait_or_kill(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log_path)
    except BaseException:
        with contextlib.suppress(Exception):
            process.kill()
            process.wait(timeout=10)
        raise


def _start_sqld(target: Target, mode: ServerMode, work_dir: Path, keys: AuthKeys | None,
                key_file: Path | None) -> CompatServer:
    assert target.sqld_path is not None
    port, admin_port = free_port(), free_port()
    log_path = work_dir / f"sqld-{mode.name}.log"
    args = [str(target.sqld_path), "--no-welcome",
            "--db-path", str(work_dir / f"sqld-{mode.name}-data"),
            "--http-listen-addr", f"127.0.0.1:{port}",
            "--admin-listen-addr", f"127.0.0.1:{admin_port}",
            "--admin-auth-key", ADMIN_KEY]
    if key_file is not None:
        args += ["--auth-jwt-key-file", str(key_file)]
    if mode.namespaces:
        args += ["--enable-namespaces"]
    if mode.self_url:
        args += ["--http-self-url", f"http://127.0.0.1:{port}"]
    # sqld cannot shorten its 10 s stream expiry; mode.stream_idle_timeout_s is ignored
    # and CompatServer.stream_expiry_s reports the real value to the tests.
    env = {key: value for key, value in os.environ.items() if not key.startswith("SQLD_")}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    _wait_or_kill(process, port, log_path)
    return CompatServer(target, mode, process, port, admin_port, log_path, keys)


class NodeScriptError(AssertionError):
    """A node script crashed, printed no JSON, or outlived its timeout."""


def node_available() -> str | None:
    """Why node scripts cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "node is not installed"
    return None


def run_node(script: str, config: dict[str, Any], timeout_s: float = NODE_TIMEOUT_S
             ) -> dict[str, Any]:
    """Run ``tests/compat/js/<script>`` with ``config`` and return its JSON output.

    The script runs in its own process group, so a hung client (or anything it
    spawned) is killed as a whole when the timeout passes.
    """
    if not (JS_DIR / "node_modules" / "@libsql" / "client").is_dir():
        raise NodeScriptError(
            f"npm clients missing: run `cd {JS_DIR} && npm install` (or `make test`)")
    env = dict(os.environ, COMPAT_CONFIG=json.dumps(config))
    process = subprocess.Popen(["node", str(JS_DIR / script)], cwd=JS_DIR, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise NodeScriptError(
            f"{script} did not finish within {timeout_s}s\nstdout:\n{stdout.decode()[-4000:]}"
            f"\nstderr:\n{stderr.decode()[-4000:]}") from None
    if process.returncode != 0:
        raise NodeScriptError(f"{script} exited with {process.returncode}\n"
                              f"stderr:\n{stderr.decode()[-4000:]}")
    try:
        result = json.loads(stdout)
    except ValueError as exc:
        raise NodeScriptError(f"{script} printed no JSON document: {stdout[-2000:]!r}\n"
                              f"stderr:\n{stderr.decode()[-4000:]}") from exc
    assert isinstance(result, dict), result
    return result

