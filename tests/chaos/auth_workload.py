"""Workload (F20): a namespace's token key rotated during faults; every member must end
up making the same authorization decisions.

Needs a cluster started with ``--enable-namespaces``. Setup creates namespace ``sec``
whose own Ed25519 key (admin config ``jwt_key``) replaces the node key. One worker keeps
rotating that key between two key pairs through random members' admin APIs (the change
goes through the replicated catalog) and, in between, reads ``sec`` with a token of
either key on random members (no check while running: a member that has not applied
the newest catalog entry may still use the older key, by design).

Final check, once the members have converged: every member reports the same config
for ``sec``; its key is the last acknowledged rotation or one whose outcome was unknown
and which was asked for after it; and every member accepts exactly the token signed by
that key and rejects the other one and a request without a token.
"""

from __future__ import annotations

import base64
import collections
import json
import random
import threading
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.chaos.client import Client, Outcome, execute
from tests.chaos.context import RunContext
from tests.support.cluster import Member

NAMESPACE = "sec"


class AuthWorkload:
    name = "auth"

    def __init__(self) -> None:
        self.keys = {name: Ed25519PrivateKey.generate() for name in ("a", "b")}
        self.tokens = {name: _token(key) for name, key in self.keys.items()}
        self.rotations: list[tuple[str, Outcome]] = []  # (key name, outcome) in order
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def setup(self, run: RunContext, client: Client) -> None:
        admin = run.cluster.leader().admin_url
        created = httpx.post(f"{admin}/v1/namespaces/{NAMESPACE}/create", json={},
                             timeout=30)
        assert created.status_code == 200, created.text
        assert self._set_key(admin, "a") is Outcome.OK
        self.rotations.append(("a", Outcome.OK))

    def _set_key(self, admin_url: str, name: str) -> Outcome:
        body = {"block_reads": False, "block_writes": False, "jwt_key": _public_pem(
            self.keys[name])}
        try:
            response = httpx.post(f"{admin_url}/v1/namespaces/{NAMESPACE}/config", json=body,
                                  timeout=15)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            return Outcome.FAIL
        except httpx.HTTPError:
            return Outcome.UNKNOWN
        if response.status_code == 200:
            return Outcome.OK
        # The server's contract (as for writes, see client.py): these codes mean the
        # change never entered the log; anything else may still commit.
        certain = ("NOT_LEADER", "CLUSTER_UNAVAILABLE", "PEER_UNAVAILABLE", "PROTOCOL_ERROR")
        return Outcome.FAIL if _code(response) in certain else Outcome.UNKNOWN

    def work(self, run: RunContext, worker: int, rng: random.Random, client: Client) -> None:
        while not run.stop.is_set():
            member = run.pick(rng)
            if member is None:
                run.sleep(0.2)
                continue
            if rng.random() < 0.2:
                name = rng.choice(sorted(self.keys))
                outcome = self._set_key(member.admin_url, name)
                with self._lock:
                    self.rotations.append((name, outcome))
                    self.counts[f"rotate:{outcome.value}"] += 1
            else:
                status = self._read(client, member, rng.choice(("a", "b", "")))
                with self._lock:
                    self.counts[f"read:{status}"] += 1
            run.sleep(rng.uniform(0.05, 0.2))

    def _read(self, client: Client, member: Member, key_name: str) -> int:
        headers = {"x-namespace": NAMESPACE, "x-edgelite-consistency": "eventual"}
        if key_name:
            headers["Authorization"] = f"Bearer {self.tokens[key_name]}"
        body = {"requests": [execute("SELECT 1"), {"type": "close"}]}
        try:
            response = client.http.post(f"{member.url}/v2/pipeline", json=body,
                                        headers=headers)
        except httpx.HTTPError:
            return 0
        return response.status_code

    def check(self, run: RunContext, client: Client) -> None:
        members = run.check_targets()
        configs = {}
        for member in members:
            response = httpx.get(f"{member.admin_url}/v1/namespaces/{NAMESPACE}/config",
                                 timeout=10)
            configs[member.node_id] = response.json() if response.status_code == 200 \
                else f"HTTP {response.status_code}"
        if len({json.dumps(c, sort_keys=True) for c in configs.values()}) != 1:
            run.violation(f"auth: members disagree on the config of {NAMESPACE}: {configs}")
            return
        config = next(iter(configs.values()))
        current = next((n for n, k in self.keys.items()
                        if isinstance(config, dict) and config.get("jwt_key") == _public_pem(k)),
                       None)
        allowed = self._allowed_final_keys()
        if current not in allowed:
            run.violation(f"auth: the final key of {NAMESPACE} is {current!r}, but only "
                          f"{sorted(allowed)} can be (rotations: {self.rotations[-8:]})")
        for member in members:
            decisions = {name or "none": self._read(client, member, name)
                         for name in ("a", "b", "")}
            expected = {name: 200 if name == current else 401 for name in ("a", "b", "none")}
            if decisions != expected:
                run.violation(f"auth: {member.node_id} decides {decisions} for {NAMESPACE} "
                              f"whose key is {current!r} (expected {expected})")

    def _allowed_final_keys(self) -> set[str]:
        """The last acknowledged rotation, or any unknown one asked for after it."""
        with self._lock:
            rotations = list(self.rotations)
        last_ok = max(i for i, (_, outcome) in enumerate(rotations) if outcome is Outcome.OK)
        return {rotations[last_ok][0]} | {
            name for name, outcome in rotations[last_ok + 1:] if outcome is Outcome.UNKNOWN}

    def summary(self) -> dict[str, Any]:
        return dict(sorted(self.counts.items()))


def _code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "PROTOCOL_ERROR" if response.status_code == 400 else ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def _public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _token(key: Ed25519PrivateKey) -> str:
    """A compact EdDSA JWT with full access (sqld's ``a: rw`` claim), no expiry."""
    def segment(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{segment({'alg': 'EdDSA', 'typ': 'JWT'})}.{segment({'a': 'rw'})}"
    signature = base64.urlsafe_b64encode(key.sign(signing_input.encode())).rstrip(b"=")
    return f"{signing_input}.{signature.decode()}"


__all__ = ["AuthWorkload"]
