"""The simulated application: a key/value register store applied from the Raft log.

Commands are small JSON documents (deterministic bytes). Every command carries the
id of the client request that produced it, and the store remembers the result of
each request it applied. That table travels inside snapshots, so a node that skips
an index by installing a snapshot can still tell a waiting client whether its
proposal took effect (like the client-session table of the Raft thesis, §6.3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Command", "KvStore", "decode_command", "encode_command"]

# JSON value types the store holds: strings or None (absent).
Value = str | None


@dataclass(frozen=True, slots=True)
class Command:
    """A write (``expected`` unused) or compare-and-swap on one key."""

    request_id: str
    client_id: str
    op: str  # "write" | "cas"
    key: str
    value: Value
    expected: Value = None


def encode_command(cmd: Command) -> bytes:
    doc = {
        "r": cmd.request_id, "c": cmd.client_id, "o": cmd.op, "k": cmd.key,
        "v": cmd.value, "e": cmd.expected,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode_command(data: bytes) -> Command:
    doc = json.loads(data)
    return Command(doc["r"], doc["c"], doc["o"], doc["k"], doc["v"], doc["e"])


class KvStore:
    """Registers plus the results of applied requests, at an applied index.

    Invariant: ``applied`` only grows, except when :meth:`restore` replaces the
    whole store with a snapshot's content.
    """

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.results: dict[str, bool | None] = {}
        self.applied = 0
        # Log position (index, term) at which each request was applied.
        self.positions: dict[str, tuple[int, int]] = {}

    def apply(self, index: int, term: int, cmd: Command) -> bool | None:
        """Apply one command at ``index``; returns the write's ``None`` or the cas flag."""
        assert index == self.applied + 1, f"apply {index} after {self.applied}"
        result: bool | None = None
        if cmd.op == "write":
            self._set(cmd.key, cmd.value)
        else:
            result = self.data.get(cmd.key) == cmd.expected
            if result:
                self._set(cmd.key, cmd.value)
        self.results[cmd.request_id] = result
        self.positions[cmd.request_id] = (index, term)
        self.applied = index
        return result

    def skip(self, index: int) -> None:
        """Advance over an entry that changes no data (no-op, conf change)."""
        assert index == self.applied + 1, f"skip {index} after {self.applied}"
        self.applied = index

    def _set(self, key: str, value: Value) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def fingerprint(self) -> str:
        """Deterministic digest of the data, for cross-node state comparison."""
        return json.dumps(sorted(self.data.items()), separators=(",", ":"))

    def serialize(self, extra: dict[str, Any]) -> bytes:
        """Snapshot bytes; ``extra`` carries the application's own fields."""
        doc = {
            "data": self.data,
            "results": self.results,
            "positions": {k: list(v) for k, v in self.positions.items()},
            "applied": self.applied,
            "extra": extra,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def restore(cls, blob: bytes) -> tuple[KvStore, dict[str, Any]]:
        doc = json.loads(blob)
        store = cls()
        store.data = dict(doc["data"])
        store.results = dict(doc["results"])
        store.positions = {k: (v[0], v[1]) for k, v in doc["positions"].items()}
        store.applied = int(doc["applied"])
        extra: dict[str, Any] = doc["extra"]
        return store, extra
