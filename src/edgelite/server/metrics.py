"""Prometheus metrics of the edge (``GET /metrics``), one registry per server.

Label values are bounded: routes are route names (never raw paths), namespaces are
ones that exist, error codes come from a fixed vocabulary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from edgelite.protocol.hrana import messages as m

_LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                      0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _IndexCollector(Collector):
    def __init__(self, indexes: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._indexes = indexes

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("edgelite_replication_index",
                                   "Highest replication index applied, per namespace",
                                   labels=["namespace"])
        for namespace, index in self._indexes():
            family.add_metric([namespace], index)
        yield family


class _RetentionCollector(Collector):
    """The span of Raft log this node keeps for replicas and change consumers."""

    def __init__(self, retained: Callable[[], Any]) -> None:
        self._retained = retained

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        retained = self._retained()
        if retained is None:  # the member is not running yet
            return
        yield GaugeMetricFamily("edgelite_log_retained_from_index",
                                "Oldest log index this node still holds (sync and change "
                                "streams can resume from one before it)",
                                value=retained.first_index)
        yield GaugeMetricFamily("edgelite_log_retained_bytes",
                                "Bytes of log entries this node holds",
                                value=retained.bytes)
        oldest = retained.oldest_committed_at_ms
        age_s = max(0.0, time.time() - oldest / 1000) if oldest else 0.0
        yield GaugeMetricFamily("edgelite_log_oldest_entry_age_seconds",
                                "Age of the oldest write entry this node holds",
                                value=age_s)


class _ClusterCollector(Collector):
    """Raft and transport numbers, read from the member at scrape time."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterable[Any]:
        return []  # names vary with the peers; collected fresh at each scrape

    def collect(self) -> Iterable[Any]:
        data = self._snapshot()
        if not data:  # the member is not running yet
            return
        stats = data["stats"]
        gauges = [
            ("edgelite_raft_term", "Current Raft term", data["term"]),
            ("edgelite_raft_commit_index", "Highest index known committed",
             data["commit_index"]),
            ("edgelite_raft_applied_index", "Highest index applied on this node",
             data["applied_index"]),
            ("edgelite_raft_fsync_seconds_max", "Slowest log fsync so far",
             stats["fsync_seconds_max"]),
        ]
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(name, documentation, value=value)
        role = GaugeMetricFamily("edgelite_raft_role", "1 for this node's current role",
                                 labels=["role"])
        for candidate in ("leader", "follower", "candidate", "pre-candidate"):
            role.add_metric([candidate], 1 if data["role"] == candidate else 0)
        yield role
        counters = [
            ("edgelite_raft_leader_changes", "Times the known leader changed",
             data["leader_changes"]),
            ("edgelite_raft_snapshots_received", "Snapshots installed from a leader",
             stats["snapshots_received"]),
            ("edgelite_raft_snapshot_chunks_sent", "Snapshot chunks sent to followers",
             stats["snapshot_chunks_sent"]),
            ("edgelite_raft_snapshot_chunks_received", "Snapshot chunks received",
             stats["snapshot_chunks_received"]),
            ("edgelite_raft_snapshots_taken", "Snapshots this node took",
             stats["snapshots_taken"]),
            ("edgelite_read_index_requests", "Read points confirmed with the leader "
             "(strong reads, and stale reads refreshed)", stats["read_index_requests"]),
            ("edgelite_stale_reads_refreshed", "Eventual or session reads whose "
             "max_staleness_ms made this node confirm a read point first",
             stats["stale_reads_refreshed"]),
        ]
        for name, documentation, value in counters:
            yield CounterMetricFamily(name, documentation, value=value)
        yield SummaryMetricFamily("edgelite_raft_fsync_seconds", "Raft log fsync latency",
                                  count_value=stats["fsyncs"], sum_value=stats["fsync_seconds"])
        yield SummaryMetricFamily("edgelite_apply_seconds",
                                  "Time from commit to applied, per entry",
                                  count_value=stats["applies"], sum_value=stats["apply_seconds"])
        lag = GaugeMetricFamily("edgelite_raft_peer_lag_entries",
                                "Entries a follower is behind the leader's commit (leader)",
                                labels=["peer"])
        for peer, progress in sorted(data["peers"].items()):
            lag.add_metric([peer], progress["lag"])
        yield lag
        yield from _transport_families(data["transport"])


def _transport_families(peers: dict[str, dict[str, int]]) -> Iterable[Any]:
    names = sorted({key for counters in peers.values() for key in counters})
    for key in names:
        family = CounterMetricFamily(f"edgelite_peer_{key}", f"Peer transport: {key}",
                                     labels=["peer"])
        for peer, counters in sorted(peers.items()):
            value = counters.get(key)
            if isinstance(value, int | float):
                family.add_metric([peer], value)
        yield family


class Metrics:
    def __init__(self, indexes: Callable[[], Iterable[tuple[str, int]]],
                 cluster: Callable[[], dict[str, Any]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("edgelite_http_requests", "HTTP requests served",
                                ["route", "status", "namespace"], registry=r)
        self.statement_latency = Histogram(
            "edgelite_statement_duration_seconds", "Time SQLite spent per statement",
            ["namespace"], buckets=_LATENCY_BUCKETS_S, registry=r)
        self.rows_read = Counter("edgelite_rows_read", "Rows read by statements",
                                 ["namespace"], registry=r)
        self.rows_written = Counter("edgelite_rows_written", "Rows written by statements",
                                    ["namespace"], registry=r)
        self.errors = Counter("edgelite_errors", "Errors returned, by Hrana code",
                              ["code", "namespace"], registry=r)
        self.open_streams = Gauge("edgelite_open_streams", "Open Hrana streams",
                                  ["transport"], registry=r)
        self.forwarded = Counter("edgelite_forwarded_requests",
                                 "Requests this node forwarded to another member",
                                 registry=r)
        self.websocket_connections = Gauge("edgelite_websocket_connections",
                                           "Open WebSocket connections", registry=r)
        r.register(_IndexCollector(indexes))
        if cluster is not None:
            r.register(_ClusterCollector(cluster))
        self._children: dict[tuple[object, ...], Any] = {}

    def add_log_retention(self, retained: Callable[[], Any]) -> None:
        self.registry.register(_RetentionCollector(retained))

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, memoised: label lookup costs more than the update."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count_request(self, route: str, status: int, namespace: str) -> None:
        self._child(self.requests, route, str(status), namespace).inc()

    def observe_results(self, namespace: str, results: Sequence[m.StreamResult]) -> None:
        for result in results:
            if isinstance(result, m.StreamResultError):
                self._child(self.errors, result.error.code or "UNKNOWN", namespace).inc()
                continue
            response = result.response
            if isinstance(response, m.ExecuteResponse):
                self.observe_statement(namespace, response.result)
            elif isinstance(response, m.BatchResponse):
                self.observe_batch(namespace, response.result)

    def observe_batch(self, namespace: str, batch: m.BatchResult) -> None:
        for step in batch.step_results:
            if step is not None:
                self.observe_statement(namespace, step)
        for error in batch.step_errors:
            if error is not None:
                self._child(self.errors, error.code or "UNKNOWN", namespace).inc()

    def observe_statement(self, namespace: str, result: m.StmtResult) -> None:
        self._child(self.statement_latency, namespace).observe(
            result.query_duration_ms / 1000)
        if result.rows_read:
            self._child(self.rows_read, namespace).inc(result.rows_read)
        if result.rows_written:
            self._child(self.rows_written, namespace).inc(result.rows_written)

    def render(self) -> bytes:
        return generate_latest(self.registry)
