"""Real crashes: a writer process killed with SIGKILL at random moments, and (with libfiu)
an fdatasync that fails underneath the store."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from edgelite.storage.raftlog import RaftLogStore

from .helpers import check_payloads

WRITER = Path(__file__).with_name("crash_writer.py")
KILL_ROUNDS = 6


class Writer:
    """A running crash_writer.py. Its stderr goes to a temporary file, not a pipe: a pipe
    nobody reads while we wait for stdout lines could fill up and stall it."""

    def __init__(self, directory: Path, seed: int, *prefix: str, mode: str = "") -> None:
        command = [*prefix, sys.executable, str(WRITER), str(directory), str(seed)]
        if mode:
            command.append(mode)
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by finish()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.errors,
                                        text=True)
        self.pid = self.process.pid

    def until_ack(self) -> str:
        """Output up to and including the next ACK line."""
        assert self.process.stdout is not None
        lines = ""
        while not lines.startswith("ACK") and "\nACK" not in lines:
            line = self.process.stdout.readline()
            assert line, f"writer ended: {self.finish()[1]}"
            lines += line
        return lines

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    def finish(self) -> tuple[str, str]:
        """The rest of stdout and all of stderr once the writer has ended (read through
        the same buffered stream as ``until_ack``, so no line is lost)."""
        assert self.process.stdout is not None
        if self.errors.closed:
            return "", ""
        out = self.process.stdout.read()
        self.process.wait(timeout=60)
        self.process.stdout.close()
        self.errors.seek(0)
        errors = self.errors.read()
        self.errors.close()
        return out, errors

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


def _acks(output: str) -> list[tuple[int, int, int]]:
    """(last, commit, term at commit) of every complete ACK line. ``last`` of the final
    one is lowered to just below a suffix replacement announced after it: that append
    may have been cut short by the kill, a log the writer itself chose to shorten."""
    acks: list[tuple[int, int, int]] = []
    for line in output.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue
        if line.startswith("ACK "):
            last, commit, term = map(int, line.split()[1:])
            acks.append((last, commit, term))
        elif line.startswith("REPLACE ") and acks:
            last, commit, term = acks[-1]
            acks[-1] = (min(last, int(line.split()[1]) - 1), commit, term)
    return acks


def _check_survived(directory: Path, acked: tuple[int, int, int]) -> list[str]:
    last, commit, term = acked
    with RaftLogStore.open(directory) as store:
        assert store.last_index() >= last, (store.last_index(), acked)
        hard_state, _ = store.initial_state()
        assert hard_state.commit >= commit
        first = store.first_index()
        if commit >= first - 1:  # (the writer may have compacted past it since)
            assert store.term(commit) == term  # committed entries never change
        found = store.entries(first, store.last_index() + 1, 1 << 40)
        check_payloads(found)
        assert [e.index for e in found] == list(range(first, store.last_index() + 1))
        assert [e.term for e in found] == sorted(e.term for e in found)
        return list(store.repairs)


def test_sigkill_at_random_moments_loses_no_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("RAFTLOG_CRASH_SEED", "crash"))
    directory = tmp_path / "log"
    best: tuple[int, int, int] | None = None
    total_acks = 0
    for _ in range(KILL_ROUNDS):
        writer = Writer(directory, rng.randrange(1 << 30))
        try:
            first_lines = writer.until_ack()
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            writer.kill()
            rest, errors = writer.finish()
        assert writer.returncode == -signal.SIGKILL, errors
        acks = _acks(first_lines + rest)
        total_acks += len(acks)
        best = acks[-1]
        _check_survived(directory, best)
    assert best is not None and total_acks >= KILL_ROUNDS, (best, total_acks)


FAULT = "enable name=posix/io/sync/fdatasync"


@pytest.fixture(scope="module")
def fiu_run() -> str:
    """The ``fiu-run`` program, installed from Debian (fiu-utils) when running as root."""
    found = shutil.which("fiu-run")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        for command in (["apt-get", "install", "-y", "-q", "fiu-utils"],
                        ["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "fiu-utils"]):
            subprocess.run(command, capture_output=True, timeout=300, check=False)
            found = shutil.which("fiu-run")
            if found is not None:
                break
    if found is None:
        pytest.skip("libfiu's fiu-run is not available (apt package fiu-utils, needs root)")
    return found


def test_failed_fdatasync_is_never_acknowledged(tmp_path: Path, fiu_run: str) -> None:
    writer = Writer(tmp_path / "log", 0, fiu_run, "-x", "-c", FAULT,
                    mode="expect-sync-failure")
    out, errors = writer.finish()
    lines = out.splitlines()
    assert writer.returncode == 0, errors
    assert len(lines) == 3 and all(line.startswith("REFUSED") for line in lines), out
    assert "fdatasync" in lines[0] and "failed earlier" in lines[1] + lines[2]


def test_fdatasync_failing_while_running_stops_acknowledgements(tmp_path: Path,
                                                                fiu_run: str) -> None:
    directory = tmp_path / "log"
    writer = Writer(directory, 7, fiu_run, "-x")
    try:
        before = "".join(writer.until_ack() for _ in range(20))
        subprocess.run(["fiu-ctrl", "-c", FAULT, str(writer.pid)], check=True, timeout=60)
        out, errors = writer.finish()
    finally:
        writer.kill()
        writer.finish()
    assert writer.returncode != 0 and "StorageError" in errors and "fdatasync" in errors
    acks = _acks(before + out)
    # Acknowledgements may continue only until the fault is in place, never after the
    # failure; everything acknowledged is on disk.
    _check_survived(directory, acks[-1])
