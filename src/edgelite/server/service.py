"""What the server needs from the node, declared here so the server never imports it.

``cluster.node.Node`` implements this today; the cluster work keeps the interface.
Stream handles are opaque to the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from edgelite.protocol.hrana import messages as m
from edgelite.protocol.hrana.legacy import LegacyRequest
from edgelite.protocol.hrana.sql_store import SqlStore


class Executed(Protocol):
    """A finished job: its value and the replication index its results reflect."""

    @property
    def value(self) -> Any: ...

    @property
    def replication_index(self) -> int: ...


class PipelineRunLike(Protocol):
    @property
    def results(self) -> list[m.StreamResult]: ...

    @property
    def stored_sql(self) -> SqlStore: ...

    @property
    def closed(self) -> bool: ...


class NodeService(Protocol):
    def open_stream(self, namespace: str, *, read_only: bool) -> Any:
        """Raises NamespaceNotFoundError / BlockedError."""
        ...

    async def close_stream(self, stream: Any) -> None: ...

    async def pipeline(self, stream: Any, requests: Sequence[m.StreamRequest],
                       stored_sql: SqlStore) -> Executed: ...

    async def cursor(self, stream: Any, batch: m.Batch, stored_sql: SqlStore) -> Executed: ...

    async def legacy(self, stream: Any, request: LegacyRequest) -> Executed: ...

    def namespaces(self) -> list[str]: ...

    def applied_indexes(self) -> list[tuple[str, int]]: ...

    async def create_namespace(self, name: str, body: dict[str, Any]) -> None: ...

    def namespace_config(self, name: str) -> dict[str, Any]: ...

    async def set_namespace_config(self, name: str, body: dict[str, Any]) -> None: ...

    async def delete_namespace(self, name: str) -> None: ...

    async def fork_namespace(self, source: str, target: str) -> None: ...

    def namespace_stats(self, name: str) -> dict[str, Any]: ...

    def close(self) -> None: ...
