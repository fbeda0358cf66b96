"""Helpers for driving a single Raft node message by message in unit-level tests."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from edgelite.raft import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    MemoryStorage,
    Message,
    Raft,
    RaftConfig,
    Ready,
    decode_conf_change,
)
from edgelite.raft.messages import AppendEntriesResponse, RequestVoteResponse
from edgelite.raft.testing import Cluster

VOTERS3 = ("1", "2", "3")


def rng_factory(seed: int = 1) -> Any:
    return lambda node: random.Random(f"{seed}-{node}")


def cluster(
    voters: Iterable[str] = VOTERS3, learners: Iterable[str] = (), **config: Any
) -> Cluster:
    return Cluster.founded(list(voters), rng_factory(), list(learners), **config)


def entries_of(*terms: int, start: int = 1) -> list[Entry]:
    """Entries with the given terms at consecutive indexes from ``start``."""
    return [Entry(term, start + k, EntryKind.NORMAL, b"") for k, term in enumerate(terms)]


def new_raft(
    node: str = "1",
    voters: Iterable[str] = VOTERS3,
    learners: Iterable[str] = (),
    *,
    log_terms: Sequence[int] = (),
    term: int = 0,
    vote: str | None = None,
    seed: int = 1,
    **config: Any,
) -> tuple[Raft, MemoryStorage]:
    """A node whose storage already holds ``log_terms`` (entries 1..n) and hard state."""
    storage = MemoryStorage(ConfState(frozenset(voters), frozenset(learners)))
    storage.append(entries_of(*log_terms))
    storage.set_hard_state(HardState(max(term, *log_terms, 0), vote, 0))
    return Raft(RaftConfig(node, **config), storage, random.Random(seed)), storage


def handle(raft: Raft, storage: MemoryStorage) -> Ready | None:
    """Handle one Ready the way a runtime must (persist, apply conf changes, advance)."""
    if not raft.has_ready():
        return None
    ready = raft.ready()
    if ready.snapshot is not None:
        storage.apply_snapshot(ready.snapshot)
    storage.append(ready.entries)
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)
    for entry in ready.committed_entries:
        if entry.kind is EntryKind.CONF_CHANGE:
            raft.apply_conf_change(decode_conf_change(entry.data))
    raft.advance(ready)
    return ready


def drain(raft: Raft, storage: MemoryStorage) -> list[Message]:
    """Handle every pending Ready; return the messages they carried, in order."""
    messages: list[Message] = []
    while (ready := handle(raft, storage)) is not None:
        messages.extend(ready.messages)
    return messages


def elect(raft: Raft, storage: MemoryStorage) -> list[Message]:
    """Campaign and receive every other voter's vote; returns the leader's messages."""
    raft.campaign()
    drain(raft, storage)
    for voter in sorted(raft.conf.voters - {raft.id}):
        raft.step(RequestVoteResponse(voter, raft.id, raft.term, granted=True))
    return drain(raft, storage)


def ack(raft: Raft, node: str, index: int) -> None:
    raft.step(AppendEntriesResponse(node, raft.id, raft.term, success=True, index=index))


def log_terms(raft: Raft) -> list[int]:
    """Terms of the node's whole log, index 1 first (compacted indexes excluded)."""
    log = raft.log
    return [log.term(index) for index in range(log.first_index(), log.last_index() + 1)]
