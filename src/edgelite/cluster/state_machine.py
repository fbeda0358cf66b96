"""The replicated state machine: what applying a committed entry means on this node.

* ``WriteCommand`` → the database's writer applies the effect (its apply lane), in log
  order per database, exactly once (the database records the index it applied);
* ``CatalogCommand`` → a *barrier*: it runs alone once every earlier entry is applied,
  so a fork copies exactly the state at its index and a delete cannot race a write;
* membership changes → the transport learns the members' addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgelite.cluster.catalog import NamespaceConfig
from edgelite.cluster.commands import CatalogCommand, CatalogOp, WriteCommand, decode_command
from edgelite.errors import DatabaseClosedError, DivergenceError, StorageError
from edgelite.raft import ConfState, Entry
from edgelite.storage.snapshot_files import backup_file

if TYPE_CHECKING:
    from edgelite.cluster.node import Node

logger = logging.getLogger(__name__)
REAPPLY_DELAY_S = 0.05  # after a database closed under an apply (replaced or deleted)


class ClusterStateMachine:
    def __init__(self, node: Node, on_members: Callable[[ConfState, dict[str, Any]], None]) \
            -> None:
        self.node = node
        self._on_members = on_members

    def apply(self, entry: Entry, done: Callable[[int, BaseException | None], None]) -> None:
        command = decode_command(entry.data)
        assert isinstance(command, WriteCommand), command
        name = command.database
        if self.node.hold_if_diverged(name, entry):  # repaired later (resync.py)
            done(entry.index, None)
            return
        loop = asyncio.get_running_loop()
        try:
            database = self.node.database_if_exists(name)
        except DatabaseClosedError:  # its file is being replaced right now
            self._apply_later(entry, done)
            return
        if database is None:  # deleted by a later catalog entry already applied
            done(entry.index, None)
            return

        def applied(index: int, error: BaseException | None) -> None:
            if isinstance(error, DatabaseClosedError):
                # Replaced (snapshot, repair) or deleted meanwhile: ask again; the new
                # database skips what its copy already holds.
                with contextlib.suppress(RuntimeError):  # the loop is gone: stopping
                    loop.call_soon_threadsafe(self._apply_later, entry, done)
                return
            if isinstance(error, DivergenceError | StorageError):
                # Never resolved in place: stop serving the database and repair it; the
                # log moves on for every other database.
                loop.call_soon_threadsafe(self.node.mark_diverged, name, entry, error)
                error = None
            done(index, error)

        try:
            database.submit_apply(entry.index, command.effect, command.request_ids, applied)
        except DatabaseClosedError as exc:
            applied(entry.index, exc)

    def _apply_later(self, entry: Entry,
                     done: Callable[[int, BaseException | None], None]) -> None:
        member = self.node.member
        if member is None or not member.running:
            return  # the node stops; the entry is applied again at restart
        asyncio.get_running_loop().call_later(REAPPLY_DELAY_S, self.apply, entry, done)

    def is_barrier(self, entry: Entry) -> bool:
        return isinstance(decode_command(entry.data), CatalogCommand)

    async def apply_barrier(self, entry: Entry) -> None:
        command = decode_command(entry.data)
        assert isinstance(command, CatalogCommand), command
        catalog = self.node.catalog
        try:
            config = NamespaceConfig.from_json(command.config)
        except (TypeError, ValueError) as exc:  # checked on the leader; keep nodes equal
            logger.error("catalog entry %d has an invalid config: %s", entry.index, exc)
            catalog.mark_applied(entry.index)
            return
        op = command.catalog_op
        if op is CatalogOp.CREATE:
            if catalog.apply_create(entry.index, command.namespace, config):
                self.node.database(command.namespace)
        elif op is CatalogOp.DELETE:
            self.node.forget_divergence(command.namespace)
            # Forget first: closing while the catalog still lists the namespace would let
            # a request in between reopen the database whose files are being removed.
            if catalog.apply_delete(entry.index, command.namespace):
                await self.node.close_database(command.namespace)
                await asyncio.to_thread(catalog.remove_files, command.namespace)
        elif op is CatalogOp.FORK:
            await self._fork(entry.index, command, config)
        elif op is CatalogOp.CONFIG:
            catalog.apply_config(entry.index, command.namespace, config)
            await self.node.reconfigure(command.namespace)
        elif op is CatalogOp.IDENTITY:
            catalog.apply_identity(entry.index, str(command.config.get("cluster_id", "")))

    async def _fork(self, index: int, command: CatalogCommand, config: Any) -> None:
        catalog = self.node.catalog
        target = command.target
        assert target is not None
        if index <= catalog.applied_index or not catalog.exists(command.namespace):
            catalog.mark_applied(index)
            return
        source = self.node.database(command.namespace)
        path = catalog.path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(backup_file, source.path, path)
        if catalog.apply_create(index, target, config):
            self.node.database(target)

    def set_leader(self, accepting_writes: bool) -> None:
        self.node.set_accepting_writes(accepting_writes)

    def on_membership(self, conf: ConfState, context: bytes) -> None:
        try:
            info = json.loads(context) if context else {}
        except ValueError:
            info = {}
        self._on_members(conf, info if isinstance(info, dict) else {})
