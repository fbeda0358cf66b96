"""Start-up and wiring of a cluster member: log store, transport, member, state machine,
the address book of the cluster, forwarding to the leader.

A node is started either as a founder (``bootstrap``: every founder lists the same
voters; the initial configuration becomes the first, committed log entries) or as a
joiner (empty log; it learns the cluster by replication after the leader added it).
``edgelite dev`` is a founder of a one-voter cluster with no peer transport.

The address book (``members.json`` in the data directory) maps node ids to their peer
address and their public URLs. It is filled from ``--bootstrap``, from the join answer,
and from the JSON context of every membership change in the log, so it converges.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from edgelite.cluster import membership, resync
from edgelite.cluster.addresses import MemberAddress
from edgelite.cluster.member import Member, MemberConfig
from edgelite.cluster.node import Node
from edgelite.cluster.snapshots import SnapshotManager
from edgelite.cluster.state_machine import ClusterStateMachine
from edgelite.errors import (
    ClusterUnavailableError,
    ConfigError,
    NotLeaderError,
    OutcomeUnknownError,
    PeerNoReplyError,
    PeerRemoteError,
    PeerUnavailableError,
    ProtocolError,
    StreamExpiredError,
)
from edgelite.protocol.peer.messages import ForwardRequest, ForwardResponse
from edgelite.raft import ConfState, RaftConfig, Role, bootstrap_entries
from edgelite.storage.raftlog import RaftLogStore
from edgelite.storage.raftlog.snapshots import SnapshotStore

logger = logging.getLogger(__name__)

ForwardHandler = Callable[[ForwardRequest], Awaitable[ForwardResponse]]


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeConfig:
    node_id: str
    data_dir: Path
    self_address: MemberAddress
    peer_listen: tuple[str, int] | None = None
    secret: bytes | None = None
    bootstrap: Mapping[str, str] | None = None  # founders: node id -> peer host:port
    tick_interval_s: float = 0.1
    election_timeout_ticks: int = 10
    heartbeat_interval_ticks: int = 1
    commit_timeout_s: float = 10.0
    forward_timeout_s: float = 15.0
    leader_wait_s: float = 5.0
    snapshot_entries: int = 10_000
    snapshot_trailing_entries: int = 1_000


class _NoPeers:
    """Transport of a one-voter cluster: there is nobody to send to."""

    def send(self, node_id: str, message: Any) -> bool:
        return False


class ClusterRuntime:
    def __init__(self, node: Node, config: RuntimeConfig) -> None:
        self.node = node
        self.config = config
        self.addresses: dict[str, MemberAddress] = {}
        self.transport: Any = None
        self.member: Member | None = None
        self.log: RaftLogStore | None = None
        self.snapshots: SnapshotManager | None = None
        self.forward_handler: ForwardHandler | None = None
        self.wants_voter: dict[str, bool] = {}
        self._previous_members: set[str] = set()
        self._background: list[asyncio.Task[None]] = []
        self._members_file = config.data_dir / "members.json"

    # --- start / stop ------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._load_addresses()
        self.addresses[config.node_id] = config.self_address
        log = RaftLogStore.open(config.data_dir / "raft")
        self.log = log
        self.snapshots = SnapshotManager(
            self.node, SnapshotStore(config.data_dir / "snapshots"), log, config.data_dir,
            entries_per_snapshot=config.snapshot_entries,
            trailing_entries=config.snapshot_trailing_entries)
        self.snapshots.recover()
        if config.bootstrap is not None and _is_fresh(log):
            self._bootstrap(log, config.bootstrap)
        self._save_addresses()
        state_machine = ClusterStateMachine(self.node, self._on_members)
        transport = self._make_transport()
        snapshot = log.snapshot_meta()
        raft_config = RaftConfig(config.node_id,
                                 election_timeout_ticks=config.election_timeout_ticks,
                                 heartbeat_interval_ticks=config.heartbeat_interval_ticks,
                                 applied=snapshot.index if snapshot is not None else 0)
        member = Member(raft_config, log, transport, state_machine, self.snapshots,
                        MemberConfig(tick_interval_s=config.tick_interval_s,
                                     commit_timeout_s=config.commit_timeout_s))
        self.member = member
        self.node.attach(member, commit_timeout_s=config.commit_timeout_s)
        self.node.on_diverged = self._start_resync
        if transport is not None and not isinstance(transport, _NoPeers):
            self._set_transport_peers()
            await transport.start()
            self._background.append(asyncio.create_task(
                membership.promote_caught_up_learners(self)))
            self._background.append(asyncio.create_task(
                membership.step_aside_while_stalled(self)))
        await member.start()
        self._background.append(asyncio.create_task(self._take_snapshots()))
        self._background.append(asyncio.create_task(self._record_cluster_id()))
        if config.bootstrap is not None and set(config.bootstrap) == {config.node_id}:
            # A one-voter cluster need not wait for an election timeout: campaign as soon
            # as the founding configuration is applied.
            await member.wait_applied(len(config.bootstrap), timeout_s=30)
            member.campaign()

    def _start_resync(self, database: str, failed_index: int) -> None:
        self._background.append(asyncio.create_task(
            resync.resync(self, database, failed_index)))

    async def _record_cluster_id(self) -> None:
        """A cluster without an id (new, or older than offline sync) gets one from its
        leader; if two leaders in turn propose one, the first applied wins."""
        while self.node.catalog.cluster_id is None:
            if self.node.accepting_writes:
                try:
                    await self.node.record_cluster_id()
                except Exception as exc:  # lost leadership meanwhile: the next one will
                    logger.info("node %s: recording the cluster id failed: %s",
                                self.node_id, exc)
            await asyncio.sleep(0.2)

    async def _take_snapshots(self) -> None:
        while True:
            member = self.member
            if member is not None and member.fatal is None:
                try:
                    await self.node.sync.catch_up()  # keeps sync pulls and /metrics current
                except Exception:
                    logger.exception("node %s: indexing the log for sync failed",
                                     self.node_id)
            await asyncio.sleep(1.0)
            if member is None or member.fatal is not None:
                continue
            try:
                await self.snapshots.maybe_take(member)
            except Exception:
                logger.exception("node %s: taking a snapshot failed", self.node_id)

    async def wait_writable(self, timeout_s: float) -> None:
        """Until this node leads and accepts writes (a one-node cluster at start-up)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.node.accepting_writes:
            if loop.time() > deadline:
                raise ClusterUnavailableError(f"no leader after {timeout_s:g}s")
            await asyncio.sleep(0.01)

    async def wait_failed(self) -> BaseException:
        """Wait until this member can no longer work (its Raft loop stopped on an error,
        e.g. the log's fdatasync failed); returns that error. The process should then
        exit: restarting recovers the state from disk, limping on would not."""
        assert self.member is not None, "start() the runtime first"
        while True:
            failure = await self.member.wait_stopped()
            if failure is not None:
                return failure
            await asyncio.sleep(3600)  # stopped deliberately: never a failure

    def failure(self) -> BaseException | None:
        return self.member.fatal if self.member is not None else None

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        if self.member is not None:
            await self.member.stop()
        if self.transport is not None and not isinstance(self.transport, _NoPeers):
            await self.transport.stop()
        self.node.close()
        if self.log is not None:
            self.log.close()

    def _make_transport(self) -> Any:
        config = self.config
        if config.peer_listen is None:
            self.transport = _NoPeers()
            return self.transport
        if config.secret is None:
            raise ConfigError("a node with a peer port needs the cluster secret")
        from edgelite.cluster.transport import PeerTransport

        host, port = config.peer_listen
        self.transport = PeerTransport(config.node_id, config.secret, host, port,
                                       self._on_peer_message, on_request=self._on_request)
        return self.transport

    def _bootstrap(self, log: RaftLogStore, founders: Mapping[str, str]) -> None:
        entries, hard_state = bootstrap_entries(ConfState(frozenset(founders), frozenset()))
        log.append(entries)
        log.set_hard_state(hard_state)
        log.sync()
        for node_id, peer in founders.items():
            if node_id not in self.addresses:
                self.addresses[node_id] = MemberAddress(node_id, peer=peer)
        logger.info("node %s bootstrapped a cluster of %s", self.config.node_id,
                    ", ".join(sorted(founders)))

    # --- peers ---------------------------------------------------------------------------------

    def _on_peer_message(self, peer_id: str, message: Any) -> None:
        if self.member is not None:
            self.member.on_message(peer_id, message)

    async def _on_request(self, peer_id: str, body: Any) -> Any:
        if not isinstance(body, ForwardRequest):
            raise ClusterUnavailableError(f"unexpected request from {peer_id}")
        if body.kind == "info":
            payload = json.dumps(self.local_info()).encode()
            return ForwardResponse(body.request_id, 200, payload, {})
        if body.kind == "snapshot_request":
            return await resync.serve_snapshot_request(self, body)
        if body.kind == "snapshot_chunk":
            return resync.serve_snapshot_chunk(self, body)
        if self.forward_handler is None:
            raise ClusterUnavailableError("this node is not serving requests yet")
        return await self.forward_handler(body)

    @property
    def node_id(self) -> str:
        return self.config.node_id

    def serve_forwarded_with(self, handler: ForwardHandler) -> None:
        self.forward_handler = handler

    # Membership operations (admin API); see membership.py.

    async def status(self) -> dict[str, Any]:
        return await membership.cluster_status(self)

    async def join(self, body: dict[str, Any]) -> dict[str, Any]:
        return await membership.join(self, body)

    async def add_member(self, body: dict[str, Any]) -> None:
        address = MemberAddress.from_json(body)
        if not address.node_id or not address.peer:
            raise ProtocolError("fields `node_id` and `peer` (host:port) are required")
        await membership.add(self, address, voter=not bool(body.get("learner", False)))

    async def remove_member(self, node_id: str) -> None:
        await membership.remove(self, node_id)

    async def promote(self, node_id: str) -> None:
        await membership.promote(self, node_id)

    async def transfer(self, node_id: str) -> None:
        await membership.transfer(self, node_id)

    async def forward(self, request: ForwardRequest,
                      target: str | None) -> ForwardResponse | None:
        """Send a client request to ``target`` (None: the leader) and return its answer;
        ``None`` when this node itself became the leader meanwhile (run it here).

        ``ClusterUnavailableError`` if it surely did not run there (no leader, peer
        unreachable); ``OutcomeUnknownError`` if it may have (no reply in time).
        """
        member = self.member
        assert member is not None
        destination = target
        if destination is None:
            destination = await self._leader_for_forwarding()
            if destination is None:
                return None
        if self.transport is None or isinstance(self.transport, _NoPeers):
            raise ClusterUnavailableError("this node has no peers to forward to")
        request_id = request.headers.get("request_id", "")
        try:
            reply = await self._request_leader_once_more(destination, request, target)
        except PeerNoReplyError as exc:
            raise OutcomeUnknownError(
                f"no answer from {destination} for request {request_id}; it may have run "
                f"({exc.message})", request_id=request_id) from exc
        except (PeerUnavailableError, PeerRemoteError) as exc:
            if target is not None:
                raise StreamExpiredError(
                    f"the stream's node {target} cannot be reached ({exc.message})") from exc
            raise ClusterUnavailableError(f"the leader {destination} cannot be reached: "
                                          f"{exc.message}") from exc
        if not isinstance(reply, ForwardResponse):
            raise ClusterUnavailableError("a forwarded request got an odd answer")
        return reply

    async def _request_leader_once_more(self, destination: str, request: ForwardRequest,
                                        target: str | None) -> Any:
        """A leader that cannot be reached is usually being replaced: when the request
        surely did not arrive, wait for the next leader and send it there instead."""
        try:
            return await self.transport.request(destination, request,
                                                self.config.forward_timeout_s)
        except PeerUnavailableError:
            if target is not None:
                raise
            member = self.member
            assert member is not None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.leader_wait_s
            while member.leader_id in (destination, None) and loop.time() < deadline:
                await asyncio.sleep(0.05)
            successor = member.leader_id
            if successor is None or successor == destination:
                raise
            if successor == self.config.node_id:
                raise ClusterUnavailableError("leadership moved to this node; retry") \
                    from None
            return await self.transport.request(successor, request,
                                                self.config.forward_timeout_s)

    async def _leader_for_forwarding(self) -> str | None:
        """The current leader (None if it is this node), waiting through an election."""
        member = self.member
        assert member is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.leader_wait_s
        while True:
            leader = member.leader_id
            if leader is not None and leader != self.config.node_id:
                return leader
            if leader is not None:
                if self.node.accepting_writes:
                    return None
                leader = None  # still catching up on its new term
            if loop.time() > deadline:
                raise ClusterUnavailableError(
                    f"no leader elected within {self.config.leader_wait_s:g}s")
            await asyncio.sleep(0.05)

    async def ask_peer(self, node_id: str, request: ForwardRequest,
                       timeout_s: float) -> ForwardResponse:
        if self.transport is None or isinstance(self.transport, _NoPeers):
            raise ClusterUnavailableError("this node has no peer transport")
        reply = await self.transport.request(node_id, request, timeout_s)
        assert isinstance(reply, ForwardResponse)
        return reply

    def _on_members(self, conf: ConfState, info: dict[str, Any]) -> None:
        if info.get("node_id"):
            address = MemberAddress.from_json(info)
            self.addresses[address.node_id] = address
            self.wants_voter[address.node_id] = bool(info.get("wants_voter", False))
        for node_id in self._previous_members - (conf.voters | conf.learners):
            if node_id != self.config.node_id:  # removed from the cluster
                self.addresses.pop(node_id, None)
                self.wants_voter.pop(node_id, None)
        self._previous_members = set(conf.voters | conf.learners)
        self._save_addresses()
        self._set_transport_peers()

    def _set_transport_peers(self) -> None:
        transport = self.transport
        if transport is None or isinstance(transport, _NoPeers):
            return
        for node_id, address in self.addresses.items():
            if node_id == self.config.node_id or not address.peer:
                continue
            host, _, port = address.peer.rpartition(":")
            transport.set_peer(node_id, host, int(port))

    def has_members(self) -> bool:
        """Whether this node already knows a configuration (founded, or joined before)."""
        member = self.member
        assert member is not None
        conf = member.status().conf_state
        return bool(conf.voters or conf.learners)

    def learn_addresses(self, addresses: list[MemberAddress]) -> None:
        for address in addresses:
            if address.node_id != self.config.node_id:
                self.addresses[address.node_id] = address
        self._save_addresses()
        self._set_transport_peers()

    def _load_addresses(self) -> None:
        if self._members_file.exists():
            data = json.loads(self._members_file.read_text())
            self.addresses = {a["node_id"]: MemberAddress.from_json(a) for a in data}

    def _save_addresses(self) -> None:
        temporary = self._members_file.with_suffix(".tmp")
        temporary.write_text(json.dumps([a.to_json() for a in self.addresses.values()]))
        os.replace(temporary, self._members_file)

    # --- status ----------------------------------------------------------------------------------

    def local_info(self) -> dict[str, Any]:
        member = self.member
        assert member is not None
        status = member.status()
        return {"node_id": self.config.node_id,
                "address": self.config.self_address.to_json(),
                "role": status.role.value, "term": status.term,
                "leader_id": status.leader_id, "commit_index": status.commit,
                "applied_index": member.applied_index,
                "voter": self.config.node_id in status.conf_state.voters,
                "learner": self.config.node_id in status.conf_state.learners}

    def metrics_snapshot(self) -> dict[str, Any]:
        """Numbers for /metrics, gathered at scrape time (empty before start)."""
        member = self.member
        if member is None:
            return {}
        status = member.status()
        peers = {node_id: {"match": progress.match,
                           "lag": max(0, status.commit - progress.match),
                           "learner": progress.is_learner}
                 for node_id, progress in status.progress if node_id != self.node_id}
        transport = self.transport
        peer_counters = transport.peer_metrics() if hasattr(transport, "peer_metrics") else {}
        return {"node_id": self.node_id, "role": status.role.value, "term": status.term,
                "commit_index": status.commit, "applied_index": member.applied_index,
                "leader_changes": member.leader_changes,
                "stats": dataclasses.asdict(member.stats), "peers": peers,
                "transport": peer_counters}

    @property
    def is_leader(self) -> bool:
        return self.member is not None and self.member.role is Role.LEADER

    def leader_address(self) -> MemberAddress | None:
        member = self.member
        if member is None or member.leader_id is None:
            return None
        return self.addresses.get(member.leader_id)

    def require_leader(self) -> None:
        if not self.is_leader:
            leader = self.leader_address()
            raise NotLeaderError("this node is not the leader",
                                 leader_id=leader.node_id if leader else None,
                                 leader_url=leader.http_url if leader else None)


def _is_fresh(log: RaftLogStore) -> bool:
    hard_state, _ = log.initial_state()
    return log.last_index() == 0 and hard_state.term == 0 and log.snapshot_meta() is None

