"""The peer protocol package: its public names, its size, and that it stays pure."""

from __future__ import annotations

import ast
import importlib
import pathlib
import sys

import edgelite.protocol.peer as peer

PACKAGE_DIR = pathlib.Path(peer.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if not p.stem.startswith("_"))
# The codec serialises the Raft core's messages: the one sanctioned edge out of protocol.
ALLOWED_EDGELITE = ("edgelite.errors", "edgelite.protocol", "edgelite.raft.messages",
                    "edgelite.raft.types")


def test_all_is_explicit_unique_and_importable() -> None:
    assert len(peer.__all__) == len(set(peer.__all__))
    for name in peer.__all__:
        assert hasattr(peer, name), name


def test_every_public_module_name_is_exported_by_the_package() -> None:
    for module_name in MODULES:
        module = importlib.import_module(f"edgelite.protocol.peer.{module_name}")
        missing = set(getattr(module, "__all__", ())) - set(peer.__all__)
        assert not missing, f"{module_name}: {sorted(missing)}"


def test_imports_are_pure() -> None:
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root == "edgelite":
                    assert name.startswith(ALLOWED_EDGELITE), f"{path.name} imports {name}"
                else:
                    assert root in {"msgspec", "__future__"} or (
                        root in sys.stdlib_module_names
                        and root not in {"asyncio", "socket", "threading", "time", "random",
                                         "os", "secrets", "selectors"}
                    ), f"{path.name} imports {name}"


def test_modules_stay_small() -> None:
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        assert len(path.read_text().splitlines()) <= 500, path.name
