"""Fixtures of the raft log tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

FAST_DIR = "/dev/shm" if Path("/dev/shm").is_dir() else None


@pytest.fixture
def fast_path() -> Iterator[Path]:
    """A scratch directory on tmpfs when there is one: for tests that check what recovery
    decides for hundreds of damaged copies (logic, not durability, so fsync may be
    free)."""
    path = Path(tempfile.mkdtemp(prefix="raftlog-", dir=FAST_DIR))
    yield path
    shutil.rmtree(path, ignore_errors=True)
