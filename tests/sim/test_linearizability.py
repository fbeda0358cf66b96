"""The linearizability checker on hand-written classic histories and generated ones.

Every known-bad history here is one a buggy store really produces (stale read after
failover, lost write, a CAS that swapped twice, ...); every known-good one is a
legal interleaving that a too-strict checker would wrongly reject.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edgelite.raft.linearizability import (
    CheckResult,
    Operation,
    OpKind,
    check,
    check_key,
    describe_failure,
    describe_operation,
)

INF = math.inf
R, W, C = Operation.read, Operation.write, Operation.cas


def verdict(*ops: Operation, initial: Hashable = None) -> bool | None:
    return check(list(ops), initial_value=initial).ok


# --- known-good histories --------------------------------------------------------


def test_empty_history_is_linearizable() -> None:
    result = check([])
    assert result.ok is True
    assert result.keys_checked == 0


def test_sequential_read_your_write() -> None:
    assert verdict(W("a", "x", 1, 0, 1), R("a", "x", 1, 2, 3)) is True


def test_read_of_initial_value_before_any_write() -> None:
    assert verdict(R("a", "x", None, 0, 1), W("a", "x", 1, 2, 3)) is True
    assert verdict(R("a", "x", 0, 0, 1), initial=0) is True


def test_concurrent_read_may_see_old_or_new_value() -> None:
    write = W("a", "x", 1, 0, 10)
    assert verdict(write, R("b", "x", None, 2, 3)) is True
    assert verdict(write, R("b", "x", 1, 2, 3)) is True


def test_overlapping_reads_may_flip_only_once() -> None:
    # Both reads overlap the write; one sees it, the later-starting one sees it too.
    ops = [W("a", "x", 1, 0, 10), R("b", "x", None, 1, 4), R("c", "x", 1, 2, 5)]
    assert verdict(*ops) is True


def test_equal_times_count_as_overlapping() -> None:
    # The read starts exactly when the write returns: the checker reads that as
    # overlapping, so the old value is still allowed.
    assert verdict(W("a", "x", 1, 0, 5), R("b", "x", None, 5, 6)) is True


def test_concurrent_writes_any_order_but_one_order() -> None:
    w1, w2 = W("a", "x", 1, 0, 10), W("b", "x", 2, 0, 10)
    assert verdict(w1, w2, R("c", "x", 1, 11, 12)) is True
    assert verdict(w1, w2, R("c", "x", 2, 11, 12)) is True
    # Two later sequential reads disagree with each other: no single order explains it.
    assert verdict(w1, w2, R("c", "x", 1, 11, 12), R("c", "x", 2, 13, 14)) is False


def test_successful_and_failed_cas() -> None:
    ops = [
        W("a", "x", 1, 0, 1),
        C("b", "x", 1, 2, True, 2, 3),
        C("c", "x", 1, 3, False, 4, 5),
        R("d", "x", 2, 6, 7),
    ]
    assert verdict(*ops) is True


def test_indeterminate_write_may_have_taken_effect() -> None:
    ops = [W("a", "x", 1, 0, 1), W("b", "x", 2, 2, INF), R("c", "x", 2, 10, 11)]
    assert verdict(*ops) is True


def test_indeterminate_write_may_never_take_effect() -> None:
    ops = [W("a", "x", 1, 0, 1), W("b", "x", 2, 2, INF), R("c", "x", 1, 10, 11)]
    assert verdict(*ops) is True


def test_indeterminate_write_may_take_effect_late() -> None:
    # It may appear long after its caller gave up, even after later reads.
    ops = [
        W("a", "x", 1, 0, 1),
        W("b", "x", 2, 2, INF),
        R("c", "x", 1, 10, 11),
        R("c", "x", 2, 20, 21),
    ]
    assert verdict(*ops) is True


def test_indeterminate_cas_either_way() -> None:
    base = [W("a", "x", 1, 0, 1), C("b", "x", 1, 5, None, 2, INF)]
    assert verdict(*base, R("c", "x", 5, 10, 11)) is True
    assert verdict(*base, R("c", "x", 1, 10, 11)) is True


def test_indeterminate_reads_are_ignored() -> None:
    op = Operation("a", "x", OpKind.READ, output="junk", call=0, ret=INF, indeterminate=True)
    assert verdict(op) is True


def test_keys_are_independent() -> None:
    # Per key each is fine, even though x and y interleave arbitrarily.
    ops = [W("a", "x", 1, 0, 1), W("a", "y", 1, 2, 3), R("b", "y", 1, 4, 5), R("b", "x", 1, 6, 7)]
    result = check(ops)
    assert result.ok is True
    assert result.keys_checked == 2


# --- known-bad histories ---------------------------------------------------------


def test_stale_read_after_completed_write() -> None:
    # The classic: a deposed leader serves a read from its old state.
    ops = [W("a", "x", 1, 0, 1), W("a", "x", 2, 2, 3), R("b", "x", 1, 4, 5)]
    result = check(ops)
    assert result.ok is False
    assert result.key == "x"


def test_read_of_value_never_written() -> None:
    assert verdict(W("a", "x", 1, 0, 1), R("b", "x", 7, 2, 3)) is False


def test_lost_write() -> None:
    # An acknowledged write vanishes: later reads see the value from before it.
    ops = [W("a", "x", 1, 0, 1), W("b", "x", 2, 2, 3), R("c", "x", 1, 4, 5)]
    assert verdict(*ops) is False


def test_read_goes_back_in_time() -> None:
    # Non-overlapping reads observe new then old while the write is still running.
    ops = [W("a", "x", 1, 0, 100), R("b", "x", 1, 1, 2), R("c", "x", None, 3, 4)]
    assert verdict(*ops) is False


def test_cas_swapped_twice_from_same_value() -> None:
    ops = [
        W("a", "x", 0, 0, 1),
        C("b", "x", 0, 1, True, 2, 10),
        C("c", "x", 0, 2, True, 2, 10),
    ]
    assert verdict(*ops) is False


def test_cas_failed_although_value_matched() -> None:
    ops = [W("a", "x", 3, 0, 1), C("b", "x", 3, 4, False, 2, 3)]
    assert verdict(*ops) is False


def test_cas_succeeded_although_value_differed() -> None:
    ops = [W("a", "x", 3, 0, 1), C("b", "x", 9, 4, True, 2, 3)]
    assert verdict(*ops) is False


def test_indeterminate_write_cannot_take_effect_before_its_call() -> None:
    ops = [W("a", "x", 1, 0, 1), R("b", "x", 2, 2, 3), W("c", "x", 2, 5, INF)]
    assert verdict(*ops) is False


def test_indeterminate_write_takes_effect_only_once() -> None:
    # Once 2 was seen and then overwritten by 3, the timed-out write of 2 cannot
    # re-appear.
    ops = [
        W("a", "x", 1, 0, 1),
        W("b", "x", 2, 2, INF),
        R("c", "x", 2, 5, 6),
        W("c", "x", 3, 7, 8),
        R("c", "x", 3, 9, 10),
        R("c", "x", 2, 11, 12),
    ]
    assert verdict(*ops) is False


def test_failure_on_one_key_reports_that_key() -> None:
    ops = [
        W("a", "good", 1, 0, 1),
        R("b", "good", 1, 2, 3),
        W("a", "bad", 1, 0, 1),
        R("b", "bad", None, 2, 3),
    ]
    result = check(ops)
    assert result.ok is False
    assert result.key == "bad"
    assert [op.key for op in result.history] == ["bad", "bad"]


def test_initial_values_per_key() -> None:
    ops = [R("a", "x", 5, 0, 1), R("a", "y", None, 0, 1)]
    assert check(ops, initial_values={"x": 5}).ok is True
    assert check(ops, initial_value=5).ok is False


# --- budget, validation, description ---------------------------------------------


def _wide_history(n: int) -> list[Operation]:
    """n fully concurrent writes, then a read of a value nobody wrote: the search
    has to try every subset before it can say no."""
    ops = [W(i, "x", i, 0, 100) for i in range(n)]
    return [*ops, R("r", "x", -1, 200, 201)]


def test_budget_exhaustion_returns_unknown() -> None:
    result = check(_wide_history(14), budget_steps=50)
    assert result.ok is None
    assert result.key == "x"
    assert "budget" in result.explanation
    assert result.steps == 50


def test_large_enough_budget_gives_a_verdict() -> None:
    assert check(_wide_history(10)).ok is False


def test_failure_beats_unknown_on_another_key() -> None:
    ops = [*_wide_history(14), W("a", "y", 1, 0, 1), R("b", "y", 2, 2, 3)]
    assert check(ops, budget_steps=50).ok is False


@pytest.mark.parametrize(
    "kwargs",
    [
        {"call": INF, "ret": INF, "indeterminate": True},
        {"call": 5, "ret": 4},
        {"call": 0, "ret": INF},
        {"call": 0, "ret": 3, "indeterminate": True},
    ],
)
def test_malformed_operations_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Operation("a", "x", OpKind.WRITE, value=1, **kwargs)


def test_cas_output_must_be_bool_and_write_output_none() -> None:
    with pytest.raises(ValueError):
        Operation("a", "x", OpKind.CAS, value=1, expected=0, output=None, call=0, ret=1)
    with pytest.raises(ValueError):
        Operation("a", "x", OpKind.WRITE, value=1, output=1, call=0, ret=1)


def test_check_key_rejects_mixed_keys() -> None:
    with pytest.raises(ValueError):
        check_key([W("a", "x", 1, 0, 1), W("a", "y", 1, 0, 1)])


def test_describe_failure_tells_the_story() -> None:
    ops = [W("a", "x", 1, 0, 1), W("a", "x", 2, 2, 3), R("b", "x", 1, 4, 5)]
    text = describe_failure(check(ops))
    assert "not linearizable" in text
    assert "client b: read -> 1" in text
    assert "it returned 1 but the register holds 2" in text
    assert describe_failure(check(ops[:2])) == "linearizable"


def test_describe_operation_formats() -> None:
    assert describe_operation(C("c", "x", 1, 2, None, 3, INF)) == (
        "[3, inf] client c: cas 1 -> 2 : ? (indeterminate)"
    )
    assert describe_operation(C("c", "x", 1, 2, False, 3, 4)) == (
        "[3, 4] client c: cas 1 -> 2 : failed"
    )


# --- generated histories ----------------------------------------------------------


@st.composite
def sequential_histories(draw: st.DrawFn) -> list[Operation]:
    """Run random ops one at a time on a register, then blur their timing.

    Each op gets a linearization instant ``t = 10*i``; its call is drawn below
    ``t`` and its return above, so ops overlap at random but the true sequential
    order is always a valid linearization. Some writes and CASes are turned
    indeterminate (their effect stays in the sequence); some extra indeterminate
    writes never take effect at all.
    """
    n = draw(st.integers(1, 14))
    keys = draw(st.lists(st.sampled_from("xyz"), min_size=n, max_size=n))
    state: dict[str, int | None] = {}
    ops: list[Operation] = []
    for i, key in enumerate(keys):
        t = 10 * i
        call = t - draw(st.integers(0, 35))
        ret = t + draw(st.integers(0, 35))
        kind = draw(st.sampled_from(OpKind))
        lost = draw(st.integers(0, 5)) == 0
        current = state.get(key)
        if kind is OpKind.READ:
            ops.append(R(i % 4, key, current, call, ret))
            continue
        value = draw(st.integers(0, 3))
        if kind is OpKind.WRITE:
            state[key] = value
            ops.append(W(i % 4, key, value, call, INF if lost else ret))
            continue
        expected = draw(st.sampled_from([current, 0, 1, 2]))
        swapped = current == expected
        if swapped:
            state[key] = value
        ops.append(C(i % 4, key, expected, value, None if lost else swapped, call,
                     INF if lost else ret))
    for j in range(draw(st.integers(0, 2))):
        ops.append(W("ghost", draw(st.sampled_from("xyz")), 100 + j, draw(st.integers(0, 99)), INF))
    return ops


@settings(max_examples=400, deadline=None)
@given(sequential_histories())
def test_histories_from_a_sequential_execution_pass(ops: list[Operation]) -> None:
    result = check(ops)
    assert result.ok is True, describe_failure(result)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(sequential_histories(), st.data())
def test_a_read_of_a_never_written_value_fails(ops: list[Operation], data: st.DataObject) -> None:
    reads = [i for i, op in enumerate(ops) if op.kind is OpKind.READ]
    assume(reads)
    i = data.draw(st.sampled_from(reads))
    ops[i] = R(ops[i].client_id, ops[i].key, "never-written", ops[i].call, ops[i].ret)
    result = check(ops)
    assert result.ok is False
    assert result.key == ops[i].key
    assert "never-written" in describe_failure(result)


def _brute_force(ops: Sequence[Operation]) -> bool:
    """Reference: try every order of every subset that contains all determinate ops."""
    ops = [op for op in ops if not (op.indeterminate and op.kind is OpKind.READ)]
    required = [op for op in ops if not op.indeterminate]
    optional = [op for op in ops if op.indeterminate]
    for r in range(len(optional) + 1):
        for extra in itertools.combinations(optional, r):
            for order in itertools.permutations([*required, *extra]):
                if _legal(order):
                    return True
    return False


def _legal(order: Sequence[Operation]) -> bool:
    state: Hashable = None
    for i, op in enumerate(order):
        # Real time: nothing placed later may have returned before op was called.
        if any(later.ret < op.call for later in order[i + 1 :]):
            return False
        if op.kind is OpKind.READ:
            if op.output != state:
                return False
        elif op.kind is OpKind.WRITE:
            state = op.value
        elif op.indeterminate or op.output:
            if op.expected != state:
                if not op.indeterminate:
                    return False
            else:
                state = op.value
        elif op.expected == state:
            return False
    return True


@st.composite
def arbitrary_histories(draw: st.DrawFn) -> list[Operation]:
    """Small random histories on one key, mostly not linearizable."""
    ops: list[Operation] = []
    for _ in range(draw(st.integers(1, 6))):
        call = draw(st.integers(0, 10))
        ret = call + draw(st.integers(0, 6))
        lost = draw(st.integers(0, 4)) == 0
        kind = draw(st.sampled_from(OpKind))
        v = draw(st.sampled_from([None, 1, 2]))
        if kind is OpKind.READ:
            ops.append(R("c", "x", v, call, ret))
        elif kind is OpKind.WRITE:
            ops.append(W("c", "x", v, call, INF if lost else ret))
        else:
            out = None if lost else draw(st.booleans())
            ops.append(C("c", "x", v, draw(st.sampled_from([1, 2])), out, call,
                         INF if lost else ret))
    return ops


@settings(max_examples=600, deadline=None)
@given(arbitrary_histories())
def test_agrees_with_brute_force_on_small_histories(ops: list[Operation]) -> None:
    result: CheckResult = check(ops)
    assert result.ok is _brute_force(ops), describe_failure(result)
