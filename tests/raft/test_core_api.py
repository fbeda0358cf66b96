"""The core's API contract beyond the paper: misuse, bounds, restarts, runtime reports."""

from __future__ import annotations

import random

import pytest

from edgelite.errors import ConfigError
from edgelite.raft import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    MemoryStorage,
    NoLeaderError,
    ProposalDroppedError,
    Raft,
    RaftConfig,
    Role,
    SnapshotMeta,
    decode_conf_change,
    fill_snapshot_chunk,
)
from edgelite.raft.messages import AppendEntries, InstallSnapshot
from edgelite.raft.progress import ProgressState
from tests.raft.helpers import ack, cluster, drain, elect, handle, new_raft


def test_ready_twice_without_advance_is_refused() -> None:
    raft, _ = new_raft()
    raft.campaign()
    ready = raft.ready()
    assert not raft.has_ready()
    with pytest.raises(RuntimeError):
        raft.ready()
    with pytest.raises(RuntimeError):
        raft.advance(type(ready)())
    raft.advance(ready)
    assert not raft.has_ready()


def test_inputs_between_ready_and_advance_land_in_the_next_ready() -> None:
    raft, storage = new_raft("2")
    raft.step(AppendEntries("1", "2", 1, 0, 0, (), 0))
    first = raft.ready()
    raft.step(AppendEntries("1", "2", 1, 0, 0, (), 0))
    raft.advance(first)
    second = handle(raft, storage)
    assert second is not None and len(second.messages) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"node_id": ""},
        {"heartbeat_interval_ticks": 0},
        {"election_timeout_ticks": 1, "heartbeat_interval_ticks": 1},
        {"max_inflight_messages": 0},
        {"max_message_bytes": 0},
        {"max_uncommitted_bytes": -1},
        {"applied": -1},
    ],
)
def test_invalid_config_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RaftConfig(**{"node_id": "1", **fields})  # type: ignore[arg-type]


def test_uncommitted_backlog_is_bounded() -> None:
    raft, storage = new_raft(max_uncommitted_bytes=1000)
    elect(raft, storage)
    raft.propose(b"x" * 900)
    with pytest.raises(ProposalDroppedError):
        raft.propose(b"y" * 200)
    for node in ("2", "3"):
        ack(raft, node, 2)
    drain(raft, storage)  # committed and applied: the backlog is released
    raft.propose(b"y" * 200)


def test_read_index_without_a_leader_is_refused() -> None:
    raft, _ = new_raft()
    with pytest.raises(NoLeaderError):
        raft.read_index(b"r")


def test_restart_replays_conf_changes_up_to_applied() -> None:
    """The configuration at the applied index is rebuilt from the log, so applications
    never persist configurations themselves."""
    c = cluster()
    c.elect("1")
    c.nodes["1"].raft.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "4"))
    c.stabilize()
    storage = c.nodes["2"].storage
    applied = c.nodes["2"].applied_index
    restarted = Raft(RaftConfig("2", applied=applied), storage, random.Random(1))
    assert restarted.conf == ConfState(frozenset({"1", "2", "3"}), frozenset({"4"}))
    from_zero = Raft(RaftConfig("2"), storage, random.Random(1))
    assert from_zero.conf == ConfState()  # entries from index 1 will be applied again
    ready = from_zero.ready()
    changes = [decode_conf_change(e.data) for e in ready.committed_entries if e.data]
    assert [cc.node_id for cc in changes] == ["1", "2", "3", "4"]


def test_restart_refuses_an_applied_index_past_the_commit_index() -> None:
    storage = MemoryStorage.bootstrapped(ConfState(frozenset({"1"})))
    with pytest.raises(ConfigError):
        Raft(RaftConfig("1", applied=5), storage, random.Random(1))


def test_unapplied_conf_changes_block_campaigns() -> None:
    storage = MemoryStorage.bootstrapped(ConfState(frozenset({"1", "2", "3"})))
    raft = Raft(RaftConfig("1"), storage, random.Random(1))
    raft.campaign()
    assert raft.role is Role.FOLLOWER  # bootstrap entries committed but not yet applied
    handle(raft, storage)
    raft.campaign()
    assert raft.role is Role.CANDIDATE


def test_report_unreachable_moves_a_streaming_follower_back_to_probe() -> None:
    raft, storage = new_raft()
    elect(raft, storage)
    ack(raft, "2", 1)
    assert raft.progress["2"].state is ProgressState.REPLICATE
    raft.report_unreachable("2")
    assert raft.progress["2"].state is ProgressState.PROBE


def test_failed_snapshot_report_returns_to_probing() -> None:
    c = cluster(max_message_bytes=8)
    c.elect("1")
    c.isolate("3")
    c.nodes["1"].raft.propose(b"x" * 40)
    c.stabilize()
    c.nodes["1"].take_snapshot()
    c.heal()
    c.tick("1")
    for _ in range(4):  # heartbeat, answer, probe, rejection: the snapshot starts
        c.process_ready("1")
        c.process_ready("3")
        c.deliver()
    leader = c.nodes["1"].raft
    assert leader.progress["3"].state is ProgressState.SNAPSHOT
    leader.report_snapshot_status("3", ok=False)
    assert leader.progress["3"].state is ProgressState.PROBE
    c.tick("1")
    c.stabilize()
    assert c.nodes["3"].applied == c.nodes["1"].applied


def test_snapshot_report_must_match_the_log() -> None:
    c = cluster()
    c.elect("1")
    node = c.nodes["1"]
    good = SnapshotMeta(node.applied_index, node.raft.term, node.raft.conf, 0, "s")
    with pytest.raises(ValueError):
        node.raft.report_snapshot(
            SnapshotMeta(node.applied_index + 1, node.raft.term, node.raft.conf, 0, "s")
        )
    with pytest.raises(ValueError):
        node.raft.report_snapshot(SnapshotMeta(good.index, good.term + 1, good.conf_state))
    node.raft.report_snapshot(good)


def test_fill_snapshot_chunk_checks_the_length() -> None:
    meta = SnapshotMeta(5, 1, ConfState(frozenset({"1"})), 10, "s")
    chunk = InstallSnapshot("1", "2", 1, meta, 0, 4, b"", False)
    assert fill_snapshot_chunk(chunk, b"abcd").data == b"abcd"
    with pytest.raises(ValueError):
        fill_snapshot_chunk(chunk, b"abc")


def test_message_to_another_node_is_a_bug() -> None:
    raft, _ = new_raft("1")
    with pytest.raises(AssertionError):
        raft.step(AppendEntries("2", "3", 1, 0, 0, (), 0))


def test_malformed_append_entries_never_reach_the_log() -> None:
    from edgelite.raft import Entry

    raft, storage = new_raft("2", log_terms=[1])
    gap = (Entry(2, 2), Entry(2, 4))
    future_term = (Entry(9, 2),)
    backwards = (Entry(2, 2), Entry(1, 3))
    for entries in (gap, future_term, backwards):
        raft.step(AppendEntries("1", "2", 2, 1, 1, entries, 0))
    assert raft.log.last_index() == 1
    assert drain(raft, storage) == []


def test_sole_voter_read_index_needs_no_round_trip_only_when_alone() -> None:
    alone, alone_storage = new_raft("1", voters=["1"], learners=["2"])
    assert alone.sole_voter_read_index() is None  # a follower
    alone.campaign()
    drain(alone, alone_storage)  # elected; the term's no-op commits once persisted
    assert alone.role is Role.LEADER
    assert alone.sole_voter_read_index() == alone.log.committed == 1
    alone.read_index(b"r")  # the answer agrees with what ReadIndex produces
    ready = alone.ready()
    assert [s.index for s in ready.read_states] == [1]
    alone.advance(ready)

    three, storage = new_raft("1")
    elect(three, storage)
    assert three.role is Role.LEADER
    assert three.sole_voter_read_index() is None  # two other voters must confirm


def test_sole_voter_read_index_waits_for_a_commit_of_its_term() -> None:
    raft, storage = new_raft("1", voters=["1"], log_terms=[1, 1], term=1)
    raft.campaign()
    assert raft.role is Role.LEADER
    assert raft.sole_voter_read_index() is None  # its no-op is not durable yet
    drain(raft, storage)
    assert raft.sole_voter_read_index() == 3
