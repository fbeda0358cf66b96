"""The namespaces of a node: which databases exist, where their files are, their config.

On disk: ``<data_dir>/namespaces/<name>/data.db`` plus ``config.json`` next to it. The
``default`` namespace always exists. With ``--db-file`` there is only ``default``, at
that path. (In a cluster the catalog becomes a replicated system database; this
class is the local part.)
"""

from __future__ import annotations

import dataclasses
import json
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
        self._configs: dict[str, NamespaceConfig] = {}
        if data_dir is not None:
            (data_dir / "namespaces").mkdir(parents=True, exist_ok=True)
            self._directory(DEFAULT_NAMESPACE).mkdir(exist_ok=True)
        elif db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)

    @property
    def single_file(self) -> bool:
        return self.db_file is not None

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
        if self.db_file is not None:
            return name == DEFAULT_NAMESPACE
        return _NAME.match(name) is not None and self._directory(name).is_dir()

    def names(self) -> list[str]:
        if self.data_dir is None:
            return [DEFAULT_NAMESPACE]
        return sorted(p.name for p in (self.data_dir / "namespaces").iterdir() if p.is_dir())

    def create(self, name: str, config: NamespaceConfig) -> Path:
        if self.data_dir is None:
            raise ConfigError("namespaces cannot be created when serving a single --db-file")
        directory = self._directory(name)
        if directory.exists():
            raise NamespaceExistsError(f"Namespace `{name}` already exists")
        directory.mkdir()
        self.write_config(name, config)
        _fsync_directory(directory.parent)
        return directory / "data.db"

    def delete(self, name: str) -> None:
        if not self.exists(name):
            raise NamespaceNotFoundError(f"Namespace `{name}` doesn't exist")
        if name == DEFAULT_NAMESPACE or self.data_dir is None:
            raise InvalidNamespaceError("the default namespace cannot be deleted")
        directory = self._directory(name)
        self._configs.pop(name, None)
        shutil.rmtree(directory)
        _fsync_directory(directory.parent)

    def config(self, name: str) -> NamespaceConfig:
        """The namespace's settings (cached: read on every request)."""
        cached = self._configs.get(name)
        if cached is not None:
            return cached
        config = NamespaceConfig()
        if self.data_dir is not None:
            path = self._directory(name) / "config.json"
            if path.exists():
                config = NamespaceConfig.from_json(json.loads(path.read_text()))
        self._configs[name] = config
        return config

    def write_config(self, name: str, config: NamespaceConfig) -> None:
        if self.data_dir is None:
            raise ConfigError("namespace settings need a data directory")
        path = self._directory(name) / "config.json"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            json.dump(config.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_directory(path.parent)
        self._configs[name] = config


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
