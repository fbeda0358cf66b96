"""The hrana package: its public names, and that it stays pure."""

from __future__ import annotations

import ast
import importlib
import pathlib
import sys

import edgelite.protocol.hrana as hrana

PACKAGE_DIR = pathlib.Path(hrana.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if not p.stem.startswith("_"))
ALLOWED_ROOTS = {"msgspec", "edgelite"}
FORBIDDEN = {"asyncio", "socket", "threading", "time", "random", "apsw", "sqlite3", "os"}


def test_all_is_explicit_unique_and_importable() -> None:
    assert len(hrana.__all__) == len(set(hrana.__all__))
    for name in hrana.__all__:
        assert hasattr(hrana, name), name


def test_every_public_module_name_is_exported_by_the_package() -> None:
    exported = set(hrana.__all__)
    for module_name in MODULES:
        module = importlib.import_module(f"edgelite.protocol.hrana.{module_name}")
        missing = set(getattr(module, "__all__", ())) - exported
        assert not missing, f"{module_name}: {sorted(missing)}"


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_imports_are_pure() -> None:
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for name in _imports(path):
            root = name.split(".")[0]
            assert root not in FORBIDDEN, f"{path.name} imports {name}"
            if root in ALLOWED_ROOTS:
                assert root != "edgelite" or name.startswith(
                    ("edgelite.errors", "edgelite.protocol")
                ), f"{path.name} imports {name}"
            else:
                assert root in sys.stdlib_module_names or root == "__future__", (
                    f"{path.name} imports {name}"
                )


def test_modules_stay_small() -> None:
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        assert len(path.read_text().splitlines()) <= 500, path.name
