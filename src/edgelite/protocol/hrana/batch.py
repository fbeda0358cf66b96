"""Batch conditions: checked before a batch runs, evaluated while it runs.

``validate_batch`` rejects, before anything executes, what sqld rejects as a protocol
error: a condition naming the same or a later step (or a negative / absurd index),
``is_autocommit`` below Hrana 3, ``sql_id`` in Hrana 1, more steps than allowed, and
conditions nested deeper than allowed (so evaluation can recurse safely).

``eval_condition`` decides whether a step runs, given what happened to earlier steps:
``True`` ran and succeeded, ``False`` ran and failed, ``None`` was skipped. It follows
the spec, not sqld: ``{"type":"error"}`` is false for a skipped step (sqld evaluates it
as "not ok", which is true for a skipped step; protocol.md §1.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from edgelite.errors import ProtocolError
from edgelite.protocol.hrana.messages import (
    Batch,
    BatchCond,
    CondAnd,
    CondError,
    CondIsAutocommit,
    CondNot,
    CondOk,
    CondOr,
    Stmt,
)

__all__ = [
    "CONDITION_DEPTH_MAX_DEFAULT",
    "STEPS_MAX_DEFAULT",
    "eval_condition",
    "validate_batch",
    "validate_stmt",
]

STEPS_MAX_DEFAULT: Final = 1000
CONDITION_DEPTH_MAX_DEFAULT: Final = 32


def validate_stmt(stmt: Stmt, version: int, *, path: str = "$.stmt") -> None:
    """Version rules of a statement: ``sql_id`` needs Hrana 2."""
    if version < 2 and stmt.sql_id is not None:
        raise ProtocolError(f"`sql_id` is only supported in hrana2 and higher - at `{path}`")


def validate_batch(
    batch: Batch,
    version: int,
    *,
    steps_max: int = STEPS_MAX_DEFAULT,
    condition_depth_max: int = CONDITION_DEPTH_MAX_DEFAULT,
    path: str = "$.batch",
) -> None:
    """Raise ``ProtocolError`` (naming the JSON path) if ``batch`` may not run.

    After it returns, every condition references only earlier steps and is at most
    ``condition_depth_max`` levels deep, which ``eval_condition`` relies on.
    """
    assert steps_max >= 1 and condition_depth_max >= 1
    if len(batch.steps) > steps_max:
        raise ProtocolError(
            f"batch has {len(batch.steps)} steps, more than the limit of {steps_max}"
            f" - at `{path}.steps`"
        )
    for index, step in enumerate(batch.steps):
        step_path = f"{path}.steps[{index}]"
        validate_stmt(step.stmt, version, path=f"{step_path}.stmt")
        if step.condition is not None:
            _validate_condition(
                step.condition, index, version, condition_depth_max, f"{step_path}.condition"
            )


def _validate_condition(
    root: BatchCond, step_index: int, version: int, depth_max: int, root_path: str
) -> None:
    # Iterative, so a condition tree of any shape cannot exhaust the Python stack here.
    pending: list[tuple[BatchCond, int, str]] = [(root, 1, root_path)]
    while pending:
        cond, depth, path = pending.pop()
        if depth > depth_max:
            raise ProtocolError(
                f"batch condition is nested deeper than {depth_max} levels - at `{path}`"
            )
        if isinstance(cond, CondOk | CondError):
            if not 0 <= cond.step < step_index:
                raise ProtocolError(
                    "Invalid reference to step in a batch condition: step "
                    f"{step_index} may only refer to earlier steps, not {cond.step}"
                    f" - at `{path}.step`"
                )
        elif isinstance(cond, CondNot):
            pending.append((cond.cond, depth + 1, f"{path}.cond"))
        elif isinstance(cond, CondAnd | CondOr):
            for position, child in enumerate(cond.conds):
                pending.append((child, depth + 1, f"{path}.conds[{position}]"))
        elif isinstance(cond, CondIsAutocommit):
            if version < 3:
                raise ProtocolError(
                    "The `is_autocommit` condition is only supported in protocol version "
                    f"hrana3 and higher - at `{path}`"
                )
        else:  # pragma: no cover - the union is closed
            raise AssertionError(f"unknown condition {cond!r}")


def eval_condition(
    cond: BatchCond,
    outcomes: Sequence[bool | None],
    is_autocommit: bool | Callable[[], bool],
) -> bool:
    """Whether a step guarded by ``cond`` runs.

    ``outcomes[i]`` is what happened to step i (True ok, False error, None skipped) and
    must cover every step ``cond`` refers to; ``is_autocommit`` is the connection state
    now, or a function returning it (called only if an ``is_autocommit`` node is reached).
    Precondition: the batch passed ``validate_batch``.
    """
    if isinstance(cond, CondOk):
        return outcomes[cond.step] is True
    if isinstance(cond, CondError):
        return outcomes[cond.step] is False
    if isinstance(cond, CondNot):
        return not eval_condition(cond.cond, outcomes, is_autocommit)
    if isinstance(cond, CondAnd):
        return all(eval_condition(child, outcomes, is_autocommit) for child in cond.conds)
    if isinstance(cond, CondOr):
        return any(eval_condition(child, outcomes, is_autocommit) for child in cond.conds)
    if isinstance(cond, CondIsAutocommit):
        return is_autocommit if isinstance(is_autocommit, bool) else is_autocommit()
    raise AssertionError(f"unknown condition {cond!r}")  # pragma: no cover
