"""Reading a database's change stream from the log: decoded row changes after a cursor.

A cursor ``I`` means "every change of every entry up to index I seen"; ``I:K`` means
"entry I seen up to its item K" (items are the entry's row changes and schema
statements, numbered from 0 in transaction order, whatever a consumer filters), so a
consumer that stops in the middle of a large transaction resumes exactly there.
Batches are bounded by item count; the position after a batch is exact, so a consumer
persisting it after each change never sees a change twice or misses one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgelite.cluster.commands import WriteCommand, decode_command
from edgelite.errors import ClusterUnavailableError, ProtocolError
from edgelite.raft.errors import CompactedError
from edgelite.storage import change_feed as feed

if TYPE_CHECKING:
    from edgelite.cluster.sync_service import SyncService

ENTRIES_PER_READ_MAX = 256
_CURSOR = re.compile(r"^(\d{1,19})(?::(\d{1,9}))?$")


@dataclasses.dataclass(frozen=True, slots=True)
class Cursor:
    index: int
    item: int | None = None  # None: the whole entry ``index`` was seen

    @classmethod
    def parse(cls, text: str) -> Cursor:
        match = _CURSOR.match(text.strip())
        if match is None:
            raise ProtocolError(f"invalid change cursor {text[:40]!r}: use an index (`42`) "
                                "or an index and item (`42:3`)")
        item = match.group(2)
        return cls(int(match.group(1)), int(item) if item is not None else None)

    @property
    def text(self) -> str:
        return str(self.index) if self.item is None else f"{self.index}:{self.item}"


@dataclasses.dataclass(frozen=True, slots=True)
class ChangeBatch:
    """``caught_up``: ``position`` is the member's applied index (read again only after
    it applies more); otherwise more items wait, possibly all filtered out."""

    events: list[dict[str, Any]]
    position: Cursor
    applied_index: int
    caught_up: bool


class ChangeReader:
    """One consumer's view of one database (keeps the table shapes it has read)."""

    def __init__(self, sync: SyncService, namespace: str,
                 tables: frozenset[str] | None) -> None:
        self.sync = sync
        self.namespace = namespace
        self.tables = tables
        self._shapes: dict[str, feed.Shape] | None = None
        self._shapes_at = -1

    async def read(self, index: int, item: int | None, items_max: int) -> ChangeBatch:
        """Events after cursor ``index[:item]``; ``SnapshotRequiredError`` if some are no
        longer retained."""
        sync = self.sync
        created = sync.node.catalog.incarnation(self.namespace)
        if index < created:  # entries before it wrote a deleted database of that name
            index, item = created, None
        cursor = Cursor(index, item)
        database = sync.database(self.namespace)
        sync._check_reads(self.namespace)
        applied = await sync.catch_up()
        partial = cursor.item is not None
        sync.require_available(self.namespace, cursor.index - 1 if partial else cursor.index)
        indexes = sync.index.entries_after(self.namespace, cursor.index - 1 if partial
                                           else cursor.index, ENTRIES_PER_READ_MAX)
        indexes = [i for i in indexes if i <= applied and (not partial or i >= cursor.index)]
        try:
            events, position = await asyncio.to_thread(self._decode, database.path, applied,
                                                       indexes, cursor, items_max)
        except CompactedError:  # compacted since the check: say so, or read again
            await sync.catch_up()
            return await self.read(index, item, items_max)
        caught_up = position is None and len(indexes) < ENTRIES_PER_READ_MAX
        if position is None:  # every entry listed was read
            last = applied if caught_up else indexes[-1]
            position = Cursor(max(last, cursor.index))
        return ChangeBatch(events, position, applied, caught_up)

    async def wait(self, index: int, timeout_s: float) -> None:
        """Until the member applies past ``index`` (or the timeout passes)."""
        member = self.sync._member()
        with contextlib.suppress(ClusterUnavailableError):  # timed out: nothing new
            await member.wait_applied(index + 1, timeout_s=timeout_s)

    def _decode(self, path: Path, applied: int, indexes: list[int], cursor: Cursor,
                items_max: int) -> tuple[list[dict[str, Any]], Cursor | None]:
        """Blocking: events after ``cursor`` from these entries, at most ``items_max``
        items considered; the exact position if it stopped inside the list."""
        log: Any = self.sync._member().log
        if self._shapes is None:
            self._shapes, self._shapes_at = feed.read_shapes(path), applied
        events: list[dict[str, Any]] = []
        considered = 0
        for index in indexes:
            (entry,) = log.entries(index, index + 1, 1 << 62)
            command = decode_command(entry.data)
            assert isinstance(command, WriteCommand)
            skip_through = cursor.item if index == cursor.index and cursor.item is not None \
                else -1
            for item, change in enumerate(feed.decode(command.effect)):
                if item <= skip_through:
                    continue
                if considered >= items_max:
                    return events, Cursor(index, item - 1)
                considered += 1
                if isinstance(change, feed.SchemaChange) and index > self._shapes_at:
                    # The file's schema is at least as new as this statement: reread it
                    # so the rows after it get their names.
                    self._shapes, self._shapes_at = feed.read_shapes(path), applied
                event = self._event(index, item, command.committed_at_ms, change,
                                    self._shapes)
                if event is not None:
                    events.append(event)
        return events, None

    def _event(self, index: int, item: int, at_ms: int, change: Any,
               shapes: dict[str, feed.Shape]) -> dict[str, Any] | None:
        head = {"index": index, "item": item, "cursor": f"{index}:{item}",
                "committed_at_ms": at_ms}
        if isinstance(change, feed.SchemaChange):
            if feed.internal_schema(change.sql, self.tables):
                return None
            return {"type": "schema", **head, "sql": change.sql}
        shape = shapes.get(change.name)
        if not feed.reported(change.name, shape, self.tables):
            return None
        row = feed.row_change(item, change, shape)
        return {"type": "change", **head, "table": row.table, "op": row.op, "pk": row.pk,
                "old": row.old, "new": row.new}


__all__ = ["ChangeBatch", "ChangeReader", "Cursor"]
