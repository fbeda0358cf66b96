"""The package's public surface and its layering promises."""

from __future__ import annotations

import ast
from pathlib import Path

import edgelite.auth

AUTH_DIR = Path(edgelite.auth.__file__).parent
FORBIDDEN_IMPORTS = {"asyncio", "aiohttp", "socket", "threading", "apsw", "edgelite.server",
                     "edgelite.storage", "edgelite.cluster", "edgelite.cli", "time", "random"}


def test_all_names_exist_and_are_unique() -> None:
    names = edgelite.auth.__all__
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(edgelite.auth, name) is not None, name


def test_every_public_module_name_is_exported() -> None:
    exported = set(edgelite.auth.__all__)
    for module in ("authenticator", "jwt", "keys", "permissions", "reasons", "tokens"):
        tree = ast.parse((AUTH_DIR / f"{module}.py").read_text())
        public = {
            node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
        }
        helpers = {"encode_segment", "encode_json_segment", "generate_private_key"}
        missing = public - exported - helpers
        assert not missing, f"{module}: public names not exported: {sorted(missing)}"


def test_auth_imports_no_io_layers_or_clock() -> None:
    for path in AUTH_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                root_matches = {name, name.split(".")[0]} & FORBIDDEN_IMPORTS
                prefix_matches = {f for f in FORBIDDEN_IMPORTS if name.startswith(f + ".")}
                assert not (root_matches or prefix_matches), f"{path.name} imports {name}"
