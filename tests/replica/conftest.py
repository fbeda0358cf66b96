"""Fixtures for the replica suite: a local origin database and a replica file of it
(unit tests), and real server processes (integration tests, in their own modules)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replica.local_origin import Origin


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Origin]:
    found = Origin(tmp_path / "origin.db")
    yield found
    found.connection.close()
