"""The import rules of ARCHITECTURE §1, checked on the source rather than hoped for.

Arrows mean "may import": a package may import itself, ``edgelite.errors`` and the
packages listed for it; the pure cores (``raft``, ``protocol``) may not import I/O,
threads, clocks, global randomness or APSW.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "edgelite"

ALLOWED: dict[str, set[str]] = {
    "raft": set(),
    "protocol": set(),
    "storage": set(),
    "auth": set(),
    "settings": set(),
    "aio": {"client"},
    "errors": set(),
    "client": {"protocol"},
    "replica": {"client", "storage", "protocol"},
    "cluster": {"raft", "storage", "protocol"},
    "server": {"protocol", "auth", "version"},
    "cli": {"server", "cluster", "client", "replica", "auth", "settings", "version"},
}
PURE = {"raft", "protocol"}
# Module-level exceptions, recorded in docs/architecture.md: the durable Raft log stores
# the core's own value types, and the peer codec serialises the core's messages. Both
# import only pure, standard-library modules of raft.
EXCEPTIONS: dict[str, set[str]] = {
    "storage/raftlog": {"edgelite.raft.types", "edgelite.raft.errors", "edgelite.raft.storage",
                        "edgelite.raft"},
    "protocol/peer": {"edgelite.raft.types", "edgelite.raft.messages", "edgelite.raft"},
}
IMPURE_MODULES = {"asyncio", "socket", "threading", "time", "apsw", "selectors",
                  "subprocess", "multiprocessing", "concurrent", "os", "uuid", "secrets"}


def _package(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 else \
        relative.stem


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "edgelite":
                names.extend(f"edgelite.{alias.name}" for alias in node.names)
            else:
                names.append(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_layer_rules(path: Path) -> None:
    package = _package(path)
    if package == "__init__":
        return  # the top-level facade forwards names lazily
    allowed = ALLOWED[package] | {package, "errors"}
    tree = ast.parse(path.read_text(), str(path))
    relative = path.relative_to(SRC).as_posix()
    excepted = set().union(*(names for prefix, names in EXCEPTIONS.items()
                             if relative.startswith(prefix)))
    for name in _imports(tree):
        if name in excepted:
            continue
        if name.startswith("edgelite."):
            target = name.split(".")[1]
            if target == "__version__":
                target = "version"
            assert target in allowed, f"{path.relative_to(SRC)} imports {name} ({package} " \
                                      f"may import {sorted(allowed)})"
        elif package in PURE:
            root = name.split(".")[0]
            assert root not in IMPURE_MODULES, f"pure {path.relative_to(SRC)} imports {name}"


@pytest.mark.parametrize("path", [p for p in _modules() if _package(p) in PURE],
                         ids=lambda p: str(p.relative_to(SRC)))
def test_pure_cores_use_no_global_randomness(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "random" and node.attr != "Random"):
            pytest.fail(f"{path.relative_to(SRC)}:{node.lineno} uses random.{node.attr}; "
                        "randomness must be injected")
