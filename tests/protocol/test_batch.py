"""Batch conditions: the evaluation matrix (protocol.md §1.4) and validation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgelite.errors import ProtocolError
from edgelite.protocol.hrana.batch import eval_condition, validate_batch
from edgelite.protocol.hrana.messages import (
    Batch,
    BatchStep,
    CondAnd,
    CondError,
    CondIsAutocommit,
    CondNot,
    CondOk,
    CondOr,
    Stmt,
)

OK, FAILED, SKIPPED = True, False, None
OUTCOMES = (OK, FAILED, SKIPPED)


@pytest.mark.parametrize(
    ("outcome", "ok", "error"),
    [(OK, True, False), (FAILED, False, True), (SKIPPED, False, False)],
)
def test_ok_and_error_follow_the_spec(outcome: bool | None, ok: bool, error: bool) -> None:
    # A skipped step is neither ok nor error (sqld would say error: "not ok").
    assert eval_condition(CondOk(0), [outcome], False) is ok
    assert eval_condition(CondError(0), [outcome], False) is error
    assert eval_condition(CondNot(CondOk(0)), [outcome], False) is not ok
    assert eval_condition(CondNot(CondError(0)), [outcome], False) is not error


def test_empty_and_is_true_and_empty_or_is_false() -> None:
    assert eval_condition(CondAnd([]), [], False) is True
    assert eval_condition(CondOr([]), [], False) is False


@pytest.mark.parametrize(("first", "second"), list(itertools.product(OUTCOMES, repeat=2)))
def test_and_or_over_every_pair_of_outcomes(first: bool | None, second: bool | None) -> None:
    outcomes = [first, second]
    assert eval_condition(CondAnd([CondOk(0), CondOk(1)]), outcomes, False) is (
        first is OK and second is OK
    )
    assert eval_condition(CondOr([CondOk(0), CondError(1)]), outcomes, False) is (
        first is OK or second is FAILED
    )


@pytest.mark.parametrize("autocommit", [True, False])
def test_is_autocommit(autocommit: bool) -> None:
    assert eval_condition(CondIsAutocommit(), [], autocommit) is autocommit
    assert eval_condition(CondNot(CondIsAutocommit()), [], autocommit) is not autocommit
    calls: list[int] = []

    def probe() -> bool:
        calls.append(1)
        return autocommit

    assert eval_condition(CondIsAutocommit(), [], probe) is autocommit
    assert calls == [1]
    assert eval_condition(CondOk(0), [OK], probe) is True
    assert calls == [1], "the probe is only called when an is_autocommit node is reached"


def test_libsql_client_write_batch_with_a_failing_middle_step() -> None:
    # BEGIN; INSERT (fails); SELECT; COMMIT; ROLLBACK-if-not-committed (protocol.md §3.4),
    # with the Hrana 3 `not is_autocommit` guard on each step.
    def guarded(cond: Any) -> Any:
        return CondAnd([cond, CondNot(CondIsAutocommit())])

    conditions = [
        None,
        guarded(CondOk(0)),
        guarded(CondOk(1)),
        guarded(CondOk(2)),
        CondNot(CondOk(3)),
    ]
    outcomes: list[bool | None] = [OK, FAILED]
    in_transaction = True
    for cond in conditions[2:]:
        runs = eval_condition(cond, outcomes, not in_transaction)
        outcomes.append(OK if runs else SKIPPED)
        if cond == conditions[4] and runs:
            in_transaction = False
    assert outcomes == [OK, FAILED, SKIPPED, SKIPPED, OK]


outcome_lists = st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=4)


def _reference(cond: Any, outcomes: list[bool | None], autocommit: bool) -> bool:
    """An obviously-correct twin of eval_condition, written from the spec table."""
    match cond:
        case CondOk(step=step):
            return outcomes[step] is True
        case CondError(step=step):
            return outcomes[step] is False
        case CondNot(cond=inner):
            return not _reference(inner, outcomes, autocommit)
        case CondAnd(conds=conds):
            return all(_reference(c, outcomes, autocommit) for c in conds)
        case CondOr(conds=conds):
            return any(_reference(c, outcomes, autocommit) for c in conds)
        case CondIsAutocommit():
            return autocommit
    raise AssertionError(cond)


@given(st.data(), outcome_lists, st.booleans())
def test_eval_matches_the_reference(
    data: st.DataObject, outcomes: list[bool | None], autocommit: bool
) -> None:
    steps = st.integers(0, len(outcomes) - 1)
    cond = data.draw(
        st.recursive(
            st.builds(CondOk, steps) | st.builds(CondError, steps) | st.just(CondIsAutocommit()),
            lambda c: (
                st.builds(CondNot, c)
                | st.builds(CondAnd, st.lists(c, max_size=3))
                | st.builds(CondOr, st.lists(c, max_size=3))
            ),
            max_leaves=8,
        )
    )
    assert eval_condition(cond, outcomes, autocommit) is _reference(cond, outcomes, autocommit)


# --- validation ---------------------------------------------------------------------------


def _batch(*conditions: Any) -> Batch:
    return Batch([BatchStep(Stmt(f"s{i}"), cond) for i, cond in enumerate(conditions)])


@pytest.mark.parametrize(
    ("batch", "path"),
    [
        (_batch(CondOk(0)), "$.batch.steps[0].condition.step"),
        (_batch(None, CondOk(1)), "$.batch.steps[1].condition.step"),
        (_batch(None, CondError(5)), "$.batch.steps[1].condition.step"),
        (_batch(None, CondOk(-1)), "$.batch.steps[1].condition.step"),
        (_batch(None, CondOk(2**80)), "$.batch.steps[1].condition.step"),
        (
            _batch(None, None, CondNot(CondOr([CondOk(0), CondOk(2)]))),
            "$.batch.steps[2].condition.cond.conds[1].step",
        ),
    ],
)
def test_forward_and_out_of_range_references_are_rejected(batch: Batch, path: str) -> None:
    with pytest.raises(ProtocolError, match="Invalid reference to step in a batch condition") as e:
        validate_batch(batch, 3)
    assert f"at `{path}`" in str(e.value)


def test_backward_references_are_accepted() -> None:
    validate_batch(_batch(None, CondOk(0), CondAnd([CondOk(0), CondError(1)])), 2)


def test_is_autocommit_needs_hrana3() -> None:
    batch = _batch(None, CondAnd([CondOk(0), CondNot(CondIsAutocommit())]))
    validate_batch(batch, 3)
    for version in (1, 2):
        with pytest.raises(ProtocolError, match="only supported in protocol version hrana3"):
            validate_batch(batch, version)


def test_sql_id_needs_hrana2() -> None:
    batch = Batch([BatchStep(Stmt(sql_id=1))])
    validate_batch(batch, 2)
    with pytest.raises(ProtocolError, match=r"`sql_id` .* at `\$\.batch\.steps\[0\]\.stmt`"):
        validate_batch(batch, 1)


def test_depth_and_step_count_are_bounded() -> None:
    cond: Any = CondOk(0)
    for _ in range(9):
        cond = CondNot(cond)
    validate_batch(_batch(None, cond), 3, condition_depth_max=10)
    with pytest.raises(ProtocolError, match="nested deeper than 9 levels"):
        validate_batch(_batch(None, cond), 3, condition_depth_max=9)
    with pytest.raises(ProtocolError, match="3 steps, more than the limit of 2"):
        validate_batch(_batch(None, None, None), 3, steps_max=2)


def test_wide_conditions_are_fine() -> None:
    validate_batch(_batch(None, CondAnd([CondOk(0)] * 10_000)), 3)
