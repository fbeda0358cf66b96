"""Every tunable of an edgelite node, declared once.

Each ``Setting`` has a name, type, default, unit and help text. ``docs/configuration.md``
is generated from ``SETTINGS`` (``python -m edgelite.cli.gendocs``), and a test checks it
is current. Values come from, in order of precedence: CLI flags, environment variables
(``EDGELITE_<NAME>`` upper-cased), defaults. Only I/O layers read settings; the pure
layers (``raft/``, ``protocol/``) receive their own small config objects.

Names end with their unit (``_ms``, ``_s``, ``_bytes``, ``_max`` for counts).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from edgelite.errors import ConfigError


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: Any
    unit: str
    help: str
    minimum: float | None = None

    @property
    def env_var(self) -> str:
        return "EDGELITE_" + self.name.upper()

    def parse(self, raw: Any) -> Any:
        """Convert ``raw`` (str from env/flags, or already typed) and validate it."""
        try:
            if self.type is bool and isinstance(raw, str):
                lowered = raw.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(raw)
                value: Any = lowered in ("1", "true", "yes", "on")
            else:
                value = self.type(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"setting {self.name}: cannot read {raw!r} as {self.type.__name__}"
            ) from exc
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"setting {self.name}: {value} is below the minimum {self.minimum}")
        return value


SETTINGS: tuple[Setting, ...] = (
    # --- requests and statements -------------------------------------------------------
    Setting("request_bytes_max", int, 8 * 1024 * 1024, "bytes",
            "Largest HTTP request body or WebSocket message accepted.", 1024),
    Setting("response_bytes_max", int, 10 * 1024 * 1024, "bytes",
            "Largest response a single request may produce (RESPONSE_TOO_LARGE beyond).", 1024),
    Setting("sql_bytes_max", int, 1024 * 1024, "bytes",
            "Longest SQL text of one statement or script.", 64),
    Setting("statements_per_request_max", int, 1000, "count",
            "Most statements (steps, requests) in one pipeline or batch.", 1),
    Setting("parameters_per_statement_max", int, 32766, "count",
            "Most bound parameters per statement.", 1),
    Setting("rows_per_response_max", int, 1_000_000, "count",
            "Most rows one statement may return.", 1),
    Setting("value_bytes_max", int, 4 * 1024 * 1024, "bytes",
            "Largest TEXT or BLOB value (SQLITE_LIMIT_LENGTH).", 1024),
    Setting("query_timeout_ms", int, 10_000, "ms",
            "Deadline for one statement; longer statements are interrupted.", 1),
    Setting("concurrent_requests_max", int, 512, "count",
            "Requests handled at once per node before answering 429.", 1),
    # --- streams and transactions ----------------------------------------------------
    Setting("stream_idle_timeout_s", float, 30.0, "s",
            "A Hrana HTTP stream with no request for this long is closed (STREAM_EXPIRED).",
            0.1),
    Setting("streams_max", int, 1024, "count",
            "Most open Hrana streams (HTTP and WebSocket) per node.", 1),
    Setting("txn_timeout_s", float, 5.0, "s",
            "An interactive transaction may hold the writer this long while others wait.",
            0.1),
    Setting("writer_wait_timeout_s", float, 5.0, "s",
            "How long a write waits for the writer held by an interactive transaction "
            "before failing with SQLITE_BUSY.", 0.01),
    Setting("stored_sql_max", int, 50, "count",
            "Most store_sql texts per HTTP stream.", 1),
    Setting("stored_sql_bytes_max", int, 5000, "bytes",
            "Longest text accepted by store_sql on HTTP streams.", 1),
    # --- storage -------------------------------------------------------------------------
    Setting("read_connections", int, 2, "count",
            "Read-only SQLite connections (each with its own thread) per database. More "
            "than the core count only adds GIL contention.", 1),
    Setting("group_commit_max", int, 256, "count",
            "Most autocommit writes grouped into one transaction.", 1),
    Setting("write_queue_max", int, 4096, "count",
            "Most writes waiting for a database's writer before 429.", 1),
    Setting("read_queue_max", int, 8192, "count",
            "Most reads waiting for a database's readers before 429.", 1),
    Setting("cache_pages", int, 2000, "pages",
            "SQLite page cache size per connection.", 0),
    # --- server ----------------------------------------------------------------------------
    Setting("enable_namespaces", bool, False, "flag",
            "Choose the database per request (x-namespace, Host, /dev/<name>)."),
    Setting("self_url", str, "", "url",
            "Absolute URL clients should use for this node (sent as base_url)."),
    Setting("default_consistency", str, "strong", "level",
            "Read consistency when a request names none (x-edgelite-consistency): strong "
            "(linearizable), session or eventual."),
    # --- cluster ---------------------------------------------------------------------------
    Setting("tick_interval_ms", int, 100, "ms",
            "Length of one Raft tick (heartbeats are one tick apart).", 5),
    Setting("election_timeout_ticks", int, 10, "ticks",
            "Ticks without a leader before a follower campaigns (randomised up to twice).",
            2),
    Setting("commit_timeout_s", float, 10.0, "s",
            "How long a write waits for a majority before its outcome is reported "
            "unknown.", 0.1),
    Setting("forward_timeout_s", float, 15.0, "s",
            "How long a follower waits for the leader to answer a forwarded request.", 0.1),
    Setting("snapshot_entries", int, 10_000, "entries",
            "Take a snapshot (and compact the Raft log) every this many applied entries.", 10),
    Setting("snapshot_trailing_entries", int, 1_000, "entries",
            "Entries kept in the log behind a snapshot, so briefly lagging followers catch "
            "up from the log rather than by snapshot.", 0),
    Setting("leader_wait_s", float, 5.0, "s",
            "How long a request waits for an election to finish before failing.", 0.0),
    # --- auth ----------------------------------------------------------------------------
    Setting("jwt_leeway_s", float, 60.0, "s",
            "Clock skew tolerated when checking a JWT's exp and nbf (sqld: 60 s).", 0),
    # --- sync retention (embedded replicas and change streams resume from the log) -------
    Setting("retain_entries", int, 10_000, "entries",
            "Log entries always kept behind the applied index for embedded replicas and "
            "change streams, whatever snapshots allow (0: only snapshot_trailing_entries).",
            0),
    Setting("retain_bytes", int, 0, "bytes",
            "Bytes of log entries always kept behind the applied index (0: no guarantee).",
            0),
    Setting("retain_age_s", float, 0.0, "s",
            "Log entries at most this old are always kept (0: no age guarantee).", 0),
)

SETTINGS_BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


def load(overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve every setting: overrides (flags) > environment > default."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    unknown = set(overrides) - set(SETTINGS_BY_NAME)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if overrides.get(setting.name) is not None:
            values[setting.name] = setting.parse(overrides[setting.name])
        elif setting.env_var in environ:
            values[setting.name] = setting.parse(environ[setting.env_var])
        else:
            values[setting.name] = setting.default
    return values
