"""Hybrid logical clocks: the pure functions of storage/hlc.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgelite.storage import hlc

WALL = st.integers(min_value=0, max_value=hlc.PHYSICAL_MAX_MS - 2)
CLOCK = st.builds(hlc.pack, st.integers(min_value=0, max_value=hlc.PHYSICAL_MAX_MS - 2),
                  st.integers(min_value=0, max_value=hlc.LOGICAL_MAX))


def test_pack_and_unpack() -> None:
    value = hlc.pack(1_700_000_000_000, 5)
    assert value == (1_700_000_000_000 << 16) | 5
    assert hlc.physical_ms(value) == 1_700_000_000_000
    assert hlc.logical(value) == 5


def test_logical_overflow_carries_into_the_next_millisecond() -> None:
    assert hlc.pack(10, hlc.LOGICAL_MAX + 1) == hlc.pack(11, 0)


@pytest.mark.parametrize("bad", [-1, hlc.HLC_MAX + 1, "12", 1.5, True, None])
def test_check_refuses_what_is_not_a_clock(bad: object) -> None:
    with pytest.raises(ValueError, match="hybrid logical clock"):
        hlc.check(bad)  # type: ignore[arg-type]


def test_now_follows_the_wall_clock_then_counts_within_a_millisecond() -> None:
    first = hlc.hlc_now(0, 1000)
    assert first == hlc.pack(1000, 0)
    assert hlc.hlc_now(first, 1000) == hlc.pack(1000, 1)
    assert hlc.hlc_now(first, 999) == hlc.pack(1000, 1)  # the wall went back: no regress
    assert hlc.hlc_now(first, 1001) == hlc.pack(1001, 0)


def test_receive_moves_past_a_clock_from_the_future() -> None:
    local = hlc.pack(1000, 3)
    remote = hlc.pack(5000, 7)
    assert hlc.hlc_receive(local, remote, 1000) == hlc.pack(5000, 8)
    assert hlc.hlc_receive(remote, local, 1000) == hlc.pack(5000, 8)
    assert hlc.hlc_receive(local, local, 1000) == hlc.pack(1000, 4)
    assert hlc.hlc_receive(local, remote, 9000) == hlc.pack(9000, 0)


def test_drift_is_how_far_a_clock_runs_ahead() -> None:
    assert hlc.drift_ms(hlc.pack(5000, 1), 1000) == 4000
    assert hlc.drift_ms(hlc.pack(500, 1), 1000) == 0


@given(CLOCK, WALL)
def test_now_is_strictly_monotonic(previous: int, wall_ms: int) -> None:
    following = hlc.hlc_now(previous, wall_ms)
    assert following > previous
    assert hlc.physical_ms(following) >= wall_ms


@given(CLOCK, CLOCK, WALL)
def test_receive_is_past_both_clocks_and_symmetric(local: int, remote: int,
                                                  wall_ms: int) -> None:
    received = hlc.hlc_receive(local, remote, wall_ms)
    assert received > local and received > remote
    assert received == hlc.hlc_receive(remote, local, wall_ms)
    highest = max(hlc.physical_ms(local), hlc.physical_ms(remote), wall_ms)
    # ... one millisecond later only when the logical counter overflowed
    assert hlc.physical_ms(received) in (highest, highest + 1)
    if hlc.physical_ms(received) == highest + 1:
        assert hlc.logical(received) == 0


@given(st.lists(st.tuples(st.booleans(), CLOCK, WALL), min_size=1, max_size=30))
def test_a_sequence_of_events_never_goes_back(events: list[tuple[bool, int, int]]) -> None:
    clock = 0
    for is_receive, remote, wall_ms in events:
        following = hlc.hlc_receive(clock, remote, wall_ms) if is_receive \
            else hlc.hlc_now(clock, wall_ms)
        assert following > clock
        clock = following
