"""Fixtures and options for the Raft core tests.

``pytest tests/raft --rewrite`` regenerates the expected transcripts of the scripted
interaction tests in ``tests/raft/scripts``.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rewrite",
        action="store_true",
        default=False,
        help="rewrite the expected output of tests/raft/scripts/*.txt",
    )


@pytest.fixture
def rewrite(request: pytest.FixtureRequest) -> bool:
    # getoption with a default: the option is only registered when this conftest is
    # loaded early (pytest tests/raft ...), not when the whole suite runs from the root.
    return bool(request.config.getoption("--rewrite", default=False))
