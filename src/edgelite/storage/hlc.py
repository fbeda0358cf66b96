"""Hybrid logical clocks (Kulkarni et al., "Logical Physical Clocks", 2014), pure.

An HLC is one 64-bit integer ``physical_ms << 16 | logical``: the physical part is a
wall-clock time in milliseconds (never behind any clock value seen so far), the
logical part counts events within one millisecond. Comparing two HLCs as integers
orders them causally: a clock that has seen another's value only ever moves past it.

``last-writer-wins`` conflict resolution compares the HLC of a pushed change with
the HLC of the row's last write (``_edgelite_row_clock``); replicas stamp their
offline changes with their own clock and the leader stamps server writes with its.

No I/O and no clock reads here: the caller passes ``wall_ms``. The value always fits
a signed 64-bit SQLite INTEGER: the physical part is below 2**47 ms (the year 6400).

Invariants (asserted): every result is greater than ``previous``/``local`` and at
least ``remote``; ``0 <= logical < 2**16``; ``0 <= physical < 2**47``.
"""

from __future__ import annotations

LOGICAL_BITS = 16
LOGICAL_MAX = (1 << LOGICAL_BITS) - 1
PHYSICAL_MAX_MS = (1 << 47) - 1
HLC_MAX = (PHYSICAL_MAX_MS << LOGICAL_BITS) | LOGICAL_MAX


def pack(physical_ms: int, logical: int) -> int:
    """The HLC with these parts; a logical overflow carries into the next millisecond."""
    if logical > LOGICAL_MAX:
        physical_ms, logical = physical_ms + 1, 0
    if not 0 <= physical_ms <= PHYSICAL_MAX_MS or logical < 0:
        raise ValueError(f"HLC parts out of range: physical {physical_ms} ms, "
                         f"logical {logical}")
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms(hlc: int) -> int:
    return hlc >> LOGICAL_BITS


def logical(hlc: int) -> int:
    return hlc & LOGICAL_MAX


def check(hlc: int) -> int:
    """``hlc`` itself if it is a valid clock value; ValueError naming it otherwise."""
    if isinstance(hlc, bool) or not isinstance(hlc, int) or not 0 <= hlc <= HLC_MAX:
        raise ValueError(f"{hlc!r} is not a hybrid logical clock value "
                         f"(an integer in 0..{HLC_MAX})")
    return hlc


def hlc_now(previous: int, wall_ms: int) -> int:
    """A local event (a write): the next clock value after ``previous`` at ``wall_ms``."""
    check(previous)
    last_physical = physical_ms(previous)
    if wall_ms > last_physical:
        result = pack(wall_ms, 0)
    else:
        result = pack(last_physical, logical(previous) + 1)
    assert result > previous
    return result


def hlc_receive(local: int, remote: int, wall_ms: int) -> int:
    """A message carrying ``remote`` arrived: the next local value, past both clocks."""
    check(local)
    check(remote)
    local_physical, remote_physical = physical_ms(local), physical_ms(remote)
    physical = max(local_physical, remote_physical, wall_ms)
    if physical == local_physical == remote_physical:
        result = pack(physical, max(logical(local), logical(remote)) + 1)
    elif physical == local_physical:
        result = pack(physical, logical(local) + 1)
    elif physical == remote_physical:
        result = pack(physical, logical(remote) + 1)
    else:
        result = pack(physical, 0)
    assert result > local and result > remote
    return result


def drift_ms(remote: int, wall_ms: int) -> int:
    """How far ``remote`` runs ahead of ``wall_ms`` (0 when it does not)."""
    return max(0, physical_ms(check(remote)) - wall_ms)


__all__ = ["HLC_MAX", "LOGICAL_BITS", "check", "drift_ms", "hlc_now", "hlc_receive",
           "logical", "pack", "physical_ms"]
