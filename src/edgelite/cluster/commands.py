"""What a Raft log entry carries: one command, encoded with msgpack.

* ``WriteCommand``: a transaction's effect on one database (``storage.effects``), with
  the request ids it answers (the state machine records them, so a retry carrying the
  same id is applied exactly once: Raft thesis §6.3 client sessions).
* ``CatalogCommand``: a change to the set of databases (create, delete, fork, config),
  so every node has the same namespaces and the same per-namespace keys; ``identity``
  records the cluster's random id once (the first leader proposes it).

``WriteCommand.committed_at_ms`` is the leader's wall clock when it proposed the entry
(about its commit time): replicas and change consumers see it, and log retention by
age uses it. Entries written before it existed carry 0.

The encoding is versioned and deterministic; decoding validates and raises
``StorageCorruptionError`` (a committed entry that does not decode is a broken log).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import msgspec

from edgelite.errors import StorageCorruptionError

_VERSION = 1


class CatalogOp(enum.Enum):
    CREATE = "create"
    DELETE = "delete"
    FORK = "fork"
    CONFIG = "config"
    IDENTITY = "identity"


class WriteCommand(msgspec.Struct, frozen=True, tag="write", array_like=True):
    database: str
    effect: bytes
    request_ids: Sequence[str] = ()
    origin: str = ""
    committed_at_ms: int = 0


class CatalogCommand(msgspec.Struct, frozen=True, tag="catalog", array_like=True):
    op: str
    namespace: str
    target: str | None = None
    config: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def catalog_op(self) -> CatalogOp:
        return CatalogOp(self.op)


Command = WriteCommand | CatalogCommand


class _Envelope(msgspec.Struct, frozen=True, array_like=True):
    version: int
    command: Command


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Envelope)


def encode_command(command: Command) -> bytes:
    return _encoder.encode(_Envelope(_VERSION, command))


def decode_command(data: bytes) -> Command:
    try:
        envelope = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StorageCorruptionError(f"a log entry does not decode as a command: {exc}") \
            from exc
    if envelope.version != _VERSION:
        raise StorageCorruptionError(f"log entry command version {envelope.version} is not "
                                     "supported by this edgelite")
    return envelope.command
