"""Chaos scenarios with storage faults: a full disk (F15) and failing fdatasync (F14).

Disk full: member ``n1`` keeps its data directory on a small tmpfs; the nemesis fills
it with a balloon file (sometimes right after moving leadership to ``n1``) and frees it
later. Needs root and a working ``mount``; skipped cleanly otherwise.

fsync failure: every member runs under libfiu's ``fiu-run`` (Debian ``fiu-utils``);
the nemesis makes ``fdatasync`` fail in one member (often the leader) for a while. A
member that stops because of it is restarted, as a process supervisor would. Skipped
when ``fiu-run`` is not installed.

Both end with the same checks as every scenario (test_nemeses.py): no acknowledged
write lost, no failed write visible, linearizable registers, the bank total, session
monotonicity, recovery after the fault, and equal content hashes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.chaos.harness import root_can_mount
from tests.chaos.runner import chaos_seed, run_scenario
from tests.chaos.scenarios import DISK_FULL, FSYNC, fault_seconds, timeout_for


@pytest.mark.timeout(timeout_for(DISK_FULL))
def test_disk_full(tmp_path: Path) -> None:
    if not root_can_mount(tmp_path):
        pytest.skip("a tmpfs data directory needs root and a working mount(8)")
    run_scenario(DISK_FULL, tmp_path, chaos_seed(DISK_FULL.name), fault_seconds(DISK_FULL))


@pytest.mark.timeout(timeout_for(FSYNC))
def test_fsync_failure(tmp_path: Path) -> None:
    if shutil.which("fiu-run") is None or shutil.which("fiu-ctrl") is None:
        pytest.skip("libfiu's fiu-run/fiu-ctrl are not installed (Debian fiu-utils)")
    run_scenario(FSYNC, tmp_path, chaos_seed(FSYNC.name), fault_seconds(FSYNC))
