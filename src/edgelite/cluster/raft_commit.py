"""The commit step of a Raft member's writers: a transaction is durable when its entry
is committed by a majority, and only then does the writer commit it locally."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from typing import Protocol

from edgelite.cluster.commands import WriteCommand, encode_command
from edgelite.errors import LimitExceededError, OutcomeUnknownError
from edgelite.storage.effects import Effect, encode_effect

# Below the peer transport's frame limit (32 MiB): an entry must fit in one message.
ENTRY_BYTES_MAX = 24 << 20


class Proposer(Protocol):
    def propose_from_thread(self, data: bytes) -> concurrent.futures.Future[int]: ...


class RaftCommitStep:
    """``CommitStep`` for a cluster member (runs on a writer thread, blocks)."""

    def __init__(self, proposer: Proposer, node_id: str, *, timeout_s: float,
                 entry_bytes_max: int = ENTRY_BYTES_MAX) -> None:
        self.proposer = proposer
        self.node_id = node_id
        self.timeout_s = timeout_s
        self.entry_bytes_max = entry_bytes_max

    def commit(self, database: str, effect: Effect, applied_index: int,
               request_ids: Sequence[str] = ()) -> int:
        command = WriteCommand(database, encode_effect(effect), tuple(request_ids),
                               self.node_id, int(time.time() * 1000))
        data = encode_command(command)
        if len(data) > self.entry_bytes_max:
            raise LimitExceededError(
                f"the transaction changes {len(data)} bytes, more than one log entry may "
                f"carry ({self.entry_bytes_max}); split it into smaller transactions",
                limit="entry_bytes_max", code="SQLITE_TOOBIG")
        future = self.proposer.propose_from_thread(data)
        request_id = request_ids[0] if request_ids else ""
        named = f" (request id {request_id}; GET /v1/requests/{request_id} tells whether " \
                "it committed)" if request_id else ""
        try:
            return future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError:
            if not future.cancel():  # it resolved while we gave up: use the answer
                return future.result()
            raise OutcomeUnknownError(
                f"the write was not confirmed within {self.timeout_s:g}s; it may still "
                f"commit{named}", request_id=request_id) from None
        except OutcomeUnknownError as exc:
            raise OutcomeUnknownError(f"{exc.message}{named}", request_id=request_id) \
                from exc
