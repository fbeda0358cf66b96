"""Golden interaction scripts: ``tests/raft/scripts/*.txt`` (see ``interaction.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.raft.interaction import run_script

SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.txt"))


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 12


@pytest.mark.parametrize("path", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_script(path: Path, rewrite: bool) -> None:
    for block, actual in run_script(path, rewrite=rewrite):
        assert actual == block.expected, (
            f"{path.name}: command {block.command!r}\n--- expected\n{block.expected}\n"
            f"--- actual\n{actual}"
        )
