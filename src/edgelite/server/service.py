"""What the server needs from the node, declared here so the server never imports it.

``cluster.node.Node`` implements this today; the cluster work keeps the interface.
Stream handles are opaque to the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from edgelite.protocol.hrana import messages as m
from edgelite.protocol.hrana.legacy import LegacyRequest
from edgelite.protocol.hrana.sql_store import SqlStore
from edgelite.protocol.peer.messages import ForwardRequest, ForwardResponse


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


class ClusterService(Protocol):
    """Reaching other members: forwarding a request to the leader (``target=None``) or to
    the node that holds a stream. Raises ``ClusterUnavailableError`` when it surely did
    not arrive and ``OutcomeUnknownError`` when it may have run."""

    @property
    def node_id(self) -> str: ...

    async def forward(self, request: ForwardRequest,
                      target: str | None) -> ForwardResponse | None:
        """``None``: this node became the leader meanwhile; run the request here."""
        ...

    def serve_forwarded_with(self, handler: Callable[[ForwardRequest],
                                                     Awaitable[ForwardResponse]]) -> None:
        """Requests other members forward here go to ``handler``."""
        ...

    async def status(self) -> dict[str, Any]: ...

    def failure(self) -> BaseException | None:
        """Why this member stopped working (its Raft loop failed), or None."""
        ...

    def metrics_snapshot(self) -> dict[str, Any]: ...

    async def join(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def add_member(self, body: dict[str, Any]) -> None: ...

    async def remove_member(self, node_id: str) -> None: ...

    async def promote(self, node_id: str) -> None: ...

    async def transfer(self, node_id: str) -> None: ...


class NodeService(Protocol):
    def open_stream(self, namespace: str, *, read_only: bool) -> Any:
        """Raises NamespaceNotFoundError / BlockedError."""
        ...

    async def close_stream(self, stream: Any) -> None: ...

    def is_autocommit(self, stream: Any) -> bool: ...

    def is_leader(self) -> bool: ...

    async def request_committed_at(self, namespace: str, request_id: str) -> int | None: ...



    async def pipeline(self, stream: Any, requests: Sequence[m.StreamRequest],
                       stored_sql: SqlStore, request_id: str = "",
                       read: Any = None) -> Executed: ...

    async def cursor(self, stream: Any, batch: m.Batch, stored_sql: SqlStore,
                     read: Any = None) -> Executed: ...

    async def legacy(self, stream: Any, request: LegacyRequest, read: Any = None) -> Executed:
        ...

    def read_level(self, consistency: str, bookmark: int | None,
                   max_staleness_ms: int | None = None) -> Any:
        """The value to pass as ``read`` for a consistency level and a bookmark."""
        ...

    def namespaces(self) -> list[str]: ...

    def applied_indexes(self) -> list[tuple[str, int]]: ...

    async def create_namespace(self, name: str, body: dict[str, Any]) -> None: ...

    def namespace_config(self, name: str) -> dict[str, Any]: ...

    def namespace_jwt_key(self, name: str) -> str | None:
        """The namespace's own JWT key, if any (per request: keep it cheap)."""
        ...

    async def set_namespace_config(self, name: str, body: dict[str, Any]) -> None: ...

    async def delete_namespace(self, name: str) -> None: ...

    async def fork_namespace(self, source: str, target: str) -> None: ...

    async def conflict_policies(self, name: str) -> dict[str, str]: ...

    async def set_conflict_policy(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Body ``{"table", "policy"}``; a replicated write (``NotLeaderError`` on a
        follower)."""
        ...

    def namespace_stats(self, name: str) -> dict[str, Any]: ...

    async def namespace_hash(self, name: str) -> dict[str, Any]: ...

    def close(self) -> None: ...
