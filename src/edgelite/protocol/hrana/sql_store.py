"""Stored SQL texts (``store_sql`` / ``close_sql``) and resolving ``sql_id`` references.

One store per HTTP stream (sqld: 50 texts of at most 5000 bytes) or per WebSocket
connection (sqld: 150 texts, no size limit; we also bound the total bytes so one
connection cannot hold unbounded memory).

- Storing an id that is already stored is a protocol error (sqld closes / answers 400).
- A full store answers ``SQL_STORE_TOO_MANY``, an oversized text ``SQL_STORE_TOO_LARGE``
  (both ``LimitExceededError``: a response error, the stream or connection lives on).
- Closing an unknown id is fine. Referring to an unknown id is a protocol error.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from edgelite.errors import LimitExceededError, ProtocolError
from edgelite.protocol.hrana.messages import Batch, Stmt

__all__ = ["SqlStore"]


class SqlStore:
    """Invariants: ``len(self) <= count_max``; ``total_bytes <= total_bytes_max``."""

    __slots__ = ("_texts", "count_max", "text_bytes_max", "total_bytes", "total_bytes_max")

    def __init__(
        self,
        *,
        count_max: int,
        text_bytes_max: int | None = None,
        total_bytes_max: int | None = None,
    ) -> None:
        assert count_max >= 0
        self.count_max = count_max
        self.text_bytes_max = text_bytes_max
        self.total_bytes_max = total_bytes_max
        self.total_bytes = 0
        self._texts: dict[int, tuple[str, int]] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def __contains__(self, sql_id: object) -> bool:
        return sql_id in self._texts

    def __iter__(self) -> Iterator[int]:
        return iter(self._texts)

    def store(self, sql_id: int, sql: str) -> None:
        if sql_id in self._texts:
            raise ProtocolError(f"SQL text with id {sql_id} is already stored; close it first")
        if len(self._texts) >= self.count_max:
            raise LimitExceededError(
                f"The server already stores {len(self._texts)} SQL texts, it cannot store more",
                limit="stored_sql_max",
                code="SQL_STORE_TOO_MANY",
            )
        size = len(sql.encode("utf-8", "surrogatepass"))
        if self.text_bytes_max is not None and size > self.text_bytes_max:
            raise LimitExceededError(
                f"SQL text of {size} bytes is longer than the limit of {self.text_bytes_max}",
                limit="stored_sql_bytes_max",
                code="SQL_STORE_TOO_LARGE",
            )
        if self.total_bytes_max is not None and self.total_bytes + size > self.total_bytes_max:
            raise LimitExceededError(
                f"storing {size} more bytes of SQL would exceed the limit of "
                f"{self.total_bytes_max} bytes for this connection",
                limit="stored_sql_total_bytes_max",
                code="SQL_STORE_TOO_LARGE",
            )
        self._texts[sql_id] = (sql, size)
        self.total_bytes += size

    def close(self, sql_id: int) -> None:
        entry = self._texts.pop(sql_id, None)
        if entry is not None:
            self.total_bytes -= entry[1]

    def get(self, sql_id: int) -> str:
        entry = self._texts.get(sql_id)
        if entry is None:
            raise ProtocolError(f"SQL text with id {sql_id} was not found (store it first)")
        return entry[0]

    def resolve(self, sql: str | None, sql_id: int | None) -> str:
        """The text to run: ``sql`` itself, or the stored text of ``sql_id``."""
        if sql is not None:
            assert sql_id is None
            return sql
        assert sql_id is not None
        return self.get(sql_id)

    def resolve_stmt(self, stmt: Stmt) -> Stmt:
        """``stmt`` with its ``sql_id`` replaced by the stored text (unchanged if inline)."""
        if stmt.sql_id is None:
            return stmt
        return msgspec.structs.replace(stmt, sql=self.get(stmt.sql_id), sql_id=None)

    def resolve_batch(self, batch: Batch) -> Batch:
        """``batch`` with every step's statement resolved (same object if nothing changed)."""
        if all(step.stmt.sql_id is None for step in batch.steps):
            return batch
        steps = [
            msgspec.structs.replace(step, stmt=self.resolve_stmt(step.stmt)) for step in batch.steps
        ]
        return msgspec.structs.replace(batch, steps=steps)
