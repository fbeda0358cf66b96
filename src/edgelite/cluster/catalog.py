"""The namespaces of a node: which databases exist, where their files are, their config.

On disk: ``<data_dir>/namespaces/<name>/data.db``; the list of namespaces and their
settings live in ``<data_dir>/_system.db`` (``storage.catalog_store``), which also
records the Raft index of the last catalog change applied. Every change arrives as a
committed log entry (``CatalogCommand``) and is applied exactly once, in log order, on
every node, so all nodes have the same namespaces and the same per-namespace keys. The
``default`` namespace exists from the start on every node. With ``--db-file`` there is
only ``default``, at that path.

Identity (offline sync): the cluster has a random ``cluster_id``, recorded once by a
catalog entry the first leader proposes (in ``_system.db``, or with ``--db-file`` in
``<file>.edgelite/cluster_id``); a namespace's *incarnation* is the index of the entry
that created it (0 for ``default``). ``database_id`` =
``<cluster_id>/<namespace>/<incarnation>`` names one database for its whole life.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path
from typing import Any

from edgelite.errors import (
    ConfigError,
    InvalidNamespaceError,
    NamespaceExistsError,
    NamespaceNotFoundError,
    ProtocolError,
)
from edgelite.storage.catalog_store import CatalogStore

DEFAULT_NAMESPACE = "default"
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024,
               "mib": 1024**2, "gib": 1024**3}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_namespace_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidNamespaceError(
            f"Invalid namespace {name[:80]!r}: use 1-64 letters, digits, '-' or '_'")
    return name


@dataclasses.dataclass(frozen=True, slots=True)
class NamespaceConfig:
    """sqld's per-namespace settings that edgelite honours (admin API)."""

    block_reads: bool = False
    block_writes: bool = False
    block_reason: str | None = None
    max_db_size_bytes: int | None = None
    txn_timeout_s: float | None = None
    jwt_key: str | None = None
    allow_attach: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NamespaceConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Catalog:
    def __init__(self, data_dir: Path | None, db_file: Path | None) -> None:
        if (data_dir is None) == (db_file is None):
            raise ConfigError("give exactly one of a data directory or a database file")
        self.data_dir = data_dir
        self.db_file = db_file
        self._store: CatalogStore | None = None
        self._configs: dict[str, NamespaceConfig] = {}
        self._created: dict[str, int] = {}
        self._cluster_id: str | None = None
        if data_dir is not None:
            (data_dir / "namespaces").mkdir(parents=True, exist_ok=True)
            self._store = CatalogStore(data_dir / "_system.db")
            self._store.put(0, DEFAULT_NAMESPACE, {}, created=True)
            self._load()
            self._directory(DEFAULT_NAMESPACE).mkdir(exist_ok=True)
            self._remove_orphans()
        elif db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
            self._configs = {DEFAULT_NAMESPACE: NamespaceConfig()}
            self._created = {DEFAULT_NAMESPACE: 0}
            identity = self._identity_file()
            if identity is not None and identity.exists():
                self._cluster_id = identity.read_text().strip() or None

    def reopen(self) -> None:
        """After the files were replaced (a snapshot install): read the catalog again."""
        if self.data_dir is None:
            return
        if self._store is not None:
            self._store.close()
        self._store = CatalogStore(self.data_dir / "_system.db")
        self._store.put(0, DEFAULT_NAMESPACE, {}, created=True)
        self._load()
        for name in self._configs:
            self._directory(name).mkdir(exist_ok=True)
        self._remove_orphans()

    @property
    def store_path(self) -> Path | None:
        return self.data_dir / "_system.db" if self.data_dir is not None else None

    def _load(self) -> None:
        assert self._store is not None
        self._configs = {name: NamespaceConfig.from_json(config)
                         for name, config in self._store.namespaces().items()}
        self._created = self._store.created_indexes()
        self._cluster_id = self._store.cluster_id

    def _identity_file(self) -> Path | None:
        if self.db_file is None:
            return None
        return self.db_file.with_name(self.db_file.name + ".edgelite") / "cluster_id"

    @property
    def cluster_id(self) -> str | None:
        """The cluster's id, once the entry recording it is applied here."""
        return self._cluster_id

    def incarnation(self, name: str) -> int:
        """The index of the entry that created ``name`` (log entries before it wrote an
        earlier database of the same name)."""
        self.config(name)
        return self._created.get(name, 0)

    def database_id(self, name: str) -> str | None:
        """``<cluster_id>/<namespace>/<incarnation>``; None before the id is known."""
        if self._cluster_id is None:
            return None
        self.config(name)  # 404 for unknown namespaces
        return f"{self._cluster_id}/{name}/{self._created.get(name, 0)}"

    def _remove_orphans(self) -> None:
        """Directories of namespaces deleted just before a crash."""
        assert self.data_dir is not None
        for directory in (self.data_dir / "namespaces").iterdir():
            if directory.is_dir() and directory.name not in self._configs:
                shutil.rmtree(directory, ignore_errors=True)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @property
    def single_file(self) -> bool:
        return self.db_file is not None

    @property
    def applied_index(self) -> int:
        return self._store.applied_index if self._store is not None else 0

    def _directory(self, name: str) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "namespaces" / check_namespace_name(name)

    def path(self, name: str) -> Path:
        if self.db_file is not None:
            if name != DEFAULT_NAMESPACE:
                raise NamespaceNotFoundError(f"Namespace `{name}` doesn't exist")
            return self.db_file
        return self._directory(name) / "data.db"

    def exists(self, name: str) -> bool:
        return name in self._configs

    def names(self) -> list[str]:
        return sorted(self._configs)

    def config(self, name: str) -> NamespaceConfig:
        config = self._configs.get(name)
        if config is None:
            raise NamespaceNotFoundError(f"Namespace `{name}` doesn't exist")
        return config

    # --- checks before proposing (the leader) ----------------------------------------------

    def check_create(self, name: str) -> None:
        if self.data_dir is None:
            raise ConfigError("namespaces cannot be created when serving a single --db-file")
        check_namespace_name(name)
        if name in self._configs:
            raise NamespaceExistsError(f"Namespace `{name}` already exists")

    def check_delete(self, name: str) -> None:
        check_namespace_name(name)
        if name not in self._configs:
            raise NamespaceNotFoundError(f"Namespace `{name}` doesn't exist")
        if name == DEFAULT_NAMESPACE or self.data_dir is None:
            raise InvalidNamespaceError("the default namespace cannot be deleted")

    # --- applying committed changes (every node, in log order) ------------------------------

    def apply_create(self, index: int, name: str, config: NamespaceConfig) -> bool:
        """Record the namespace; False if this entry was applied before (a replay)."""
        assert self._store is not None
        directory = self._directory(name)
        directory.mkdir(exist_ok=True)
        _fsync_directory(directory.parent)
        if not self._store.put(index, name, config.to_json(), created=True):
            return False
        self._configs[name] = config
        self._created[name] = index
        return True

    def apply_delete(self, index: int, name: str) -> bool:
        """Forget the namespace (new requests get 404 from here on); False on a replay.

        The files stay until ``remove_files``: the caller closes the open database in
        between, and a crash before the removal leaves an orphan that the next start
        removes."""
        assert self._store is not None
        if not self._store.put(index, name, None):
            return False
        self._configs.pop(name, None)
        return True

    def remove_files(self, name: str) -> None:
        assert name not in self._configs, "remove files only of a forgotten namespace"
        directory = self._directory(name)
        shutil.rmtree(directory, ignore_errors=True)
        _fsync_directory(directory.parent)

    def apply_config(self, index: int, name: str, config: NamespaceConfig) -> bool:
        assert self._store is not None
        if not self._store.put(index, name, config.to_json()):
            return False
        if name in self._configs:
            self._configs[name] = config
        return True

    def apply_identity(self, index: int, cluster_id: str) -> bool:
        """Record the cluster's id unless it has one (the first entry wins)."""
        if not cluster_id:
            self.mark_applied(index)
            return False
        if self._store is not None:
            if not self._store.set_cluster_id(index, cluster_id):
                return False
            self._cluster_id = self._store.cluster_id
            return True
        identity = self._identity_file()
        if self._cluster_id is not None or identity is None:
            return False
        identity.parent.mkdir(parents=True, exist_ok=True)
        temporary = identity.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            handle.write(cluster_id)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, identity)
        _fsync_directory(identity.parent)
        self._cluster_id = cluster_id
        return True

    def mark_applied(self, index: int) -> None:
        """A catalog entry that changed nothing (e.g. refused on apply) is still applied."""
        if self._store is not None:
            self._store.mark_applied(index)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_size(value: Any) -> int | None:
    """``"10MB"``, ``"512kib"`` or a byte count -> bytes."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number):] or "b"
        if number.isdigit() and unit in _SIZE_UNITS:
            return int(number) * _SIZE_UNITS[unit]
    raise ProtocolError(f"invalid size {value!r} (use bytes or e.g. \"10MB\")")


def parse_config(body: dict[str, Any]) -> NamespaceConfig:
    """The admin API's JSON config (sqld's field names) -> ``NamespaceConfig``."""
    def flag(name: str) -> bool:
        value = body.get(name, False)
        if not isinstance(value, bool):
            raise ProtocolError(f"`{name}` must be true or false")
        return value

    timeout = body.get("txn_timeout_s")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise ProtocolError("`txn_timeout_s` must be a positive number of seconds")
    reason = body.get("block_reason")
    if reason is not None and not isinstance(reason, str):
        raise ProtocolError("`block_reason` must be a string")
    jwt_key = body.get("jwt_key")
    if jwt_key is not None and not isinstance(jwt_key, str):
        raise ProtocolError("`jwt_key` must be a string")
    return NamespaceConfig(
        block_reads=flag("block_reads"), block_writes=flag("block_writes"),
        block_reason=reason, max_db_size_bytes=parse_size(body.get("max_db_size")),
        txn_timeout_s=None if timeout is None else float(timeout), jwt_key=jwt_key,
        allow_attach=flag("allow_attach"))


def config_to_json(config: NamespaceConfig) -> dict[str, Any]:
    return {"block_reads": config.block_reads, "block_writes": config.block_writes,
            "block_reason": config.block_reason,
            "max_db_size": config.max_db_size_bytes, "heartbeat_url": None,
            "jwt_key": config.jwt_key, "allow_attach": config.allow_attach,
            "txn_timeout_s": config.txn_timeout_s, "durability_mode": "strong"}
