"""A simulator that never fails proves nothing: break the core (or the runtime) on
purpose, one classic Raft bug at a time, and require the simulator to report it.

Each variant is a monkeypatch of the real core, active only inside its test. The
simulator gets a bounded number of seeds to find the bug; the phrase it must report
names the invariant that a correct detection breaks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pytest

from edgelite.raft import leader, quorum, replication
from edgelite.raft.core import Raft
from edgelite.raft.log import RaftLog
from edgelite.raft.sim import SimOptions, SimResult, run_seed, voters_for
from edgelite.raft.sim.__main__ import main
from edgelite.raft.storage import MemoryStorage
from edgelite.raft.types import HardState


def first_failure(phrase: str, seeds: int, steps: int = 400, **bugs: bool) -> SimResult | None:
    """The first seed whose failure names ``phrase`` (other failures, e.g. from a real
    core bug the sweep reports anyway, do not count as detecting this variant)."""
    for seed in range(1, seeds + 1):
        result = run_seed(SimOptions(seed, voters_for(seed, "mixed"), steps, **bugs))
        if not result.ok and phrase in result.failure:
            return result
    return None


def commit_by_counting_replicas(r: Raft) -> bool:
    """maybe_commit without the current-term condition of §5.4.2 (Figure 8)."""
    index = quorum.committed_index(
        r.conf.voters, {node: pr.match for node, pr in r.progress.items()}
    )
    if index <= r.log.committed:
        return False
    first_of_term = r.log.term_or_zero(r.log.committed) != r.term
    r.log.commit_to(index)
    if first_of_term and r.log.term_or_zero(index) == r.term:
        leader.on_first_commit_of_term(r)
    return True


def read_index_without_heartbeat_round(r: Raft, reads: Sequence[tuple[bytes, str]]) -> None:
    """Answer ReadIndex at once, without confirming leadership with a quorum (§6.4)."""
    for context, requester in reads:
        r.reads.add(context, requester, r.log.committed)
    for request in r.reads.release(r.reads.last_seq()):
        leader._answer_read(r, request)


def forgetful_initial_state(self: MemoryStorage) -> tuple[HardState, object]:
    """A restart that loses the vote it had persisted (as if it was never fsynced)."""
    hard_state, conf_state = ORIGINAL_INITIAL_STATE(self)
    return HardState(hard_state.term, None, hard_state.commit), conf_state


ORIGINAL_INITIAL_STATE = MemoryStorage.initial_state


def minority_quorum(voter_count: int) -> int:
    return voter_count // 2


Patch = Callable[[pytest.MonkeyPatch], None]

VARIANTS: dict[str, tuple[Patch, dict[str, bool], int, str]] = {
    # name: (patch, simulator switches, seeds allowed, phrase the report must contain)
    "vote without the up-to-date check": (
        lambda mp: mp.setattr(RaftLog, "is_up_to_date", lambda self, index, term: True),
        {}, 60, "leader completeness",
    ),
    "commit entries of earlier terms by counting replicas": (
        lambda mp: mp.setattr(replication, "maybe_commit", commit_by_counting_replicas),
        {}, 60, "commit rule",
    ),
    "majority computed as n // 2": (
        lambda mp: (mp.setattr(quorum, "quorum_size", minority_quorum),
                    mp.setattr(leader, "quorum_size", minority_quorum)),
        {}, 10, "durable only on",
    ),
    "restart forgets the persisted vote": (
        lambda mp: mp.setattr(MemoryStorage, "initial_state", forgetful_initial_state),
        {}, 200, "vote",
    ),
    "read index without a heartbeat round": (
        lambda mp: mp.setattr(leader, "_register_reads", read_index_without_heartbeat_round),
        {}, 600, "linearizability",
    ),
    "runtime sends before persisting": (
        lambda mp: None, {"send_before_persist_bug": True}, 10, "durable",
    ),
    "runtime serves reads from local state": (
        lambda mp: None, {"local_reads_bug": True}, 10, "linearizability",
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_simulator_reports_a_broken_variant(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    patch, switches, seeds, phrase = VARIANTS[name]
    patch(monkeypatch)
    result = first_failure(phrase, seeds, **switches)
    assert result is not None, f"{name}: no {phrase!r} violation in {seeds} seeds"


def test_failing_seed_prints_transcript_and_replays_exactly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(RaftLog, "is_up_to_date", lambda self, index, term: True)
    status = main(["--seeds", "60", "--start-seed", "1", "--steps", "400"])
    out = capsys.readouterr().out
    assert status == 1
    rerun = re.search(r"^rerun: python -m edgelite\.raft\.sim (.*)$", out, re.MULTILINE)
    assert rerun is not None, out[-3000:]
    args = rerun.group(1).split()
    assert "--verbose" in args
    # The printed transcript ends with the failure, after real Raft traffic.
    assert re.search(r"^\d{5} FAILED: violation: ", out, re.MULTILINE)
    assert " AppendEntries term=" in out
    # The printed command replays the same failure with the same transcript, twice.
    replays = []
    for _ in range(2):
        assert main(args) == 1
        replays.append(capsys.readouterr().out)
    assert replays[0] == replays[1]
    failure_line = re.search(r"^seed \d+ FAILED: .*$", out, re.MULTILINE)
    assert failure_line is not None
    assert failure_line.group(0) in replays[0]
