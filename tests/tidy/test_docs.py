"""Generated reference pages are current, and every package has its design note."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_current() -> None:
    result = subprocess.run([sys.executable, "-m", "edgelite.cli.gendocs", "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_every_setting_is_documented() -> None:
    from edgelite import settings

    text = (ROOT / "docs" / "configuration.md").read_text()
    for setting in settings.SETTINGS:
        assert f"`{setting.name}`" in text
