"""Linearizability checking for key/value histories.

A history is a list of :class:`Operation` records, one per client request: what was
asked (read, write or compare-and-swap on one key), what came back, and when the
request was *called* and when it *returned* on the test driver's clock (any totally
ordered numbers: ticks, step counters, floats). The history is linearizable when
every operation can be given one instant between its call and its return such that
executing the operations one at a time in that order, against a single register per
key, produces exactly the recorded outputs.

How it is checked
-----------------
* **P-compositionality** (Herlihy & Wing): a history of independent registers is
  linearizable iff each key's sub-history is, so every key is searched on its own.
  That keeps each search small.
* **Wing & Gong's search**: walk the events in time order; at each point try to
  linearize any operation whose call has happened and that no pending return forces
  to wait; backtrack when a return is reached for an operation not yet placed.
* **Lowe's memoization**: a search state is (set of linearized operations as a bit
  set, register value). A state seen before is never explored again, which turns an
  exponential search into one bounded by the number of distinct reachable states.
* **Budget**: each key's search stops after ``budget_steps`` iterations and reports
  ``ok=None`` ("unknown") instead of hanging; a definite failure on any key wins
  over an unknown on another.

What the checker assumes
------------------------
* Real-time order is strict: ``a`` precedes ``b`` iff ``a.ret < b.call``. Equal
  times mean "overlapping", the conservative reading of a coarse clock; a driver
  that wants ``a`` to precede ``b`` must give ``b`` a strictly larger call time.
* Every key starts at ``initial_value`` (``None``, i.e. "absent", unless told
  otherwise) and only the history's own operations change it.
* An operation whose outcome is unknown (timeout, lost connection) is recorded
  with ``indeterminate=True`` and ``ret=math.inf``: it may have taken effect at any
  instant after its call, or never. Its output is ignored. Indeterminate reads
  constrain nothing and are dropped.
* Values are compared with ``==`` and must be hashable (they are memoization keys).
* A write of ``None`` is a delete; a read that finds the key absent returns ``None``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_BUDGET_STEPS",
    "CheckResult",
    "OpKind",
    "Operation",
    "check",
    "check_key",
    "describe_failure",
    "describe_operation",
]

DEFAULT_BUDGET_STEPS = 1_000_000


class OpKind(enum.Enum):
    """What a client asked for."""

    READ = "read"
    WRITE = "write"
    CAS = "cas"


@dataclass(frozen=True, slots=True)
class Operation:
    """One client request and its outcome.

    Fields by kind:

    * ``READ``: ``output`` is the value read (``None`` = absent).
    * ``WRITE``: ``value`` is the value written; ``output`` is ``None``.
    * ``CAS``: set the key to ``value`` iff it currently equals ``expected``;
      ``output`` is ``True`` when it swapped and ``False`` when it did not.

    Invariants (checked on construction): ``call`` is finite; a determinate
    operation has a finite ``ret >= call``; an indeterminate one has
    ``ret == math.inf``; a determinate CAS has a ``bool`` output.
    """

    client_id: Hashable
    key: Hashable
    kind: OpKind
    value: Hashable = None
    expected: Hashable = None
    output: Hashable = None
    call: float = 0
    ret: float = math.inf
    indeterminate: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.call):
            raise ValueError(f"operation call time must be finite, got {self.call!r}")
        if self.indeterminate:
            if self.ret != math.inf:
                raise ValueError(
                    f"an indeterminate operation must have ret=math.inf, got {self.ret!r}"
                )
            return
        if not math.isfinite(self.ret) or self.ret < self.call:
            raise ValueError(
                f"a determinate operation needs a finite ret >= call, got call={self.call!r} "
                f"ret={self.ret!r}"
            )
        if self.kind is OpKind.CAS and not isinstance(self.output, bool):
            raise ValueError(f"a determinate cas output must be a bool, got {self.output!r}")
        if self.kind is OpKind.WRITE and self.output is not None:
            raise ValueError(f"a write has no output, got {self.output!r}")

    @classmethod
    def read(
        cls, client_id: Hashable, key: Hashable, output: Hashable, call: float, ret: float
    ) -> Operation:
        """A completed read that returned ``output``."""
        return cls(client_id, key, OpKind.READ, output=output, call=call, ret=ret)

    @classmethod
    def write(
        cls, client_id: Hashable, key: Hashable, value: Hashable, call: float, ret: float
    ) -> Operation:
        """A write; ``ret=math.inf`` makes it indeterminate."""
        return cls(
            client_id, key, OpKind.WRITE, value=value, call=call, ret=ret,
            indeterminate=ret == math.inf,
        )

    @classmethod
    def cas(
        cls,
        client_id: Hashable,
        key: Hashable,
        expected: Hashable,
        value: Hashable,
        output: bool | None,
        call: float,
        ret: float,
    ) -> Operation:
        """A compare-and-swap; ``output=None, ret=math.inf`` makes it indeterminate."""
        return cls(
            client_id, key, OpKind.CAS, value=value, expected=expected, output=output,
            call=call, ret=ret, indeterminate=ret == math.inf,
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict on a history.

    ``ok`` is ``True`` (linearizable), ``False`` (not) or ``None`` (the search budget
    ran out before a verdict). When not ``True``, ``key`` names the offending key,
    ``history`` holds that key's operations (sorted by call time), and ``partial``
    the longest prefix of a linearization the search found for it, in order.
    ``explanation`` is a short human sentence; :func:`describe_failure` renders the
    whole story.
    """

    ok: bool | None
    key: Hashable
    explanation: str
    keys_checked: int = 0
    steps: int = 0
    history: tuple[Operation, ...] = ()
    partial: tuple[Operation, ...] = ()
    partial_state: Hashable = None
    initial_value: Hashable = None


def _apply(state: Hashable, op: Operation) -> tuple[bool, Hashable]:
    """One step of the sequential register model: (consistent?, next state)."""
    if op.kind is OpKind.READ:
        return state == op.output, state
    if op.kind is OpKind.WRITE:
        return True, op.value
    matches = state == op.expected
    if op.indeterminate:
        # It may have taken effect here; "never took effect" is covered by the
        # search leaving it unlinearized.
        return True, (op.value if matches else state)
    if op.output:
        return matches, (op.value if matches else state)
    return not matches, state


class _Event:
    """A call or return in the doubly linked event list of one key's search."""

    __slots__ = ("is_call", "match", "next", "op", "prev")

    def __init__(self, op: int, is_call: bool) -> None:
        self.op = op
        self.is_call = is_call
        self.match: _Event | None = None
        self.prev: _Event | None = None
        self.next: _Event | None = None


def _build_events(ops: Sequence[Operation]) -> _Event:
    """Link the calls and returns of ``ops`` in time order behind a sentinel head."""
    keyed: list[tuple[float, int, int, _Event]] = []
    for i, op in enumerate(ops):
        call, ret = _Event(i, True), _Event(i, False)
        call.match = ret
        # At equal times calls sort before returns: equal times mean "overlapping".
        keyed.append((op.call, 0, i, call))
        keyed.append((op.ret, 1, i, ret))
    keyed.sort(key=lambda item: item[:3])
    head = _Event(-1, False)
    prev = head
    for _, _, _, event in keyed:
        prev.next = event
        event.prev = prev
        prev = event
    return head


def _lift(call: _Event) -> None:
    """Unlink a call and its return (the operation is now linearized)."""
    ret = call.match
    assert call.prev is not None and call.next is not None and ret is not None
    call.prev.next = call.next
    call.next.prev = call.prev
    assert ret.prev is not None
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Event) -> None:
    """Undo :func:`_lift`; links are restored in reverse order."""
    ret = call.match
    assert call.prev is not None and call.next is not None and ret is not None
    assert ret.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call
    call.next.prev = call


@dataclass(slots=True)
class _Search:
    """Outcome of one key's search (internal)."""

    ok: bool | None
    steps: int
    best: list[int]
    best_state: Hashable


def _search(ops: Sequence[Operation], initial: Hashable, budget_steps: int) -> _Search:
    """Wing & Gong's backtracking search with Lowe's (bitset, state) cache."""
    head = _build_events(ops)
    remaining = sum(1 for op in ops if not op.indeterminate)
    state, linearized = initial, 0
    cache: set[tuple[int, Hashable]] = {(0, initial)}
    stack: list[tuple[_Event, Hashable]] = []
    best: list[int] = []
    best_state = initial
    entry = head.next
    steps = 0
    while remaining > 0:
        steps += 1
        if steps > budget_steps:
            return _Search(None, steps - 1, best, best_state)
        # Unplaced determinate ops keep their finite returns ahead of every
        # indeterminate (infinite) return, so the scan never runs off the end.
        assert entry is not None
        if entry.is_call:
            op = ops[entry.op]
            consistent, after = _apply(state, op)
            if consistent:
                bits = linearized | (1 << entry.op)
                if (bits, after) not in cache:
                    cache.add((bits, after))
                    stack.append((entry, state))
                    state, linearized = after, bits
                    remaining -= 0 if op.indeterminate else 1
                    _lift(entry)
                    if len(stack) > len(best):
                        best, best_state = [e.op for e, _ in stack], state
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return _Search(False, steps, best, best_state)
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op)
            remaining += 0 if ops[entry.op].indeterminate else 1
            _unlift(entry)
            entry = entry.next
    return _Search(True, steps, [e.op for e, _ in stack], state)


def check_key(
    ops: Iterable[Operation],
    *,
    initial_value: Hashable = None,
    budget_steps: int = DEFAULT_BUDGET_STEPS,
) -> CheckResult:
    """Check the operations of a single key (all must share one key)."""
    relevant = sorted(
        (op for op in ops if not (op.indeterminate and op.kind is OpKind.READ)),
        key=lambda op: (op.call, op.ret),
    )
    keys = {op.key for op in relevant}
    if len(keys) > 1:
        raise ValueError(f"check_key needs operations of one key, got {len(keys)} keys")
    key = next(iter(keys)) if keys else None
    found = _search(relevant, initial_value, budget_steps)
    history = tuple(relevant)
    partial = tuple(relevant[i] for i in found.best)
    if found.ok:
        return CheckResult(True, key, "linearizable", 1, found.steps)
    if found.ok is None:
        text = (
            f"key {key!r}: search budget of {budget_steps} steps exhausted after placing "
            f"{len(partial)} of {len(history)} operations; verdict unknown"
        )
    else:
        text = (
            f"key {key!r}: not linearizable; at most {len(partial)} of {len(history)} "
            f"operations can be placed (register then holds {found.best_state!r})"
        )
    return CheckResult(
        found.ok, key, text, 1, found.steps, history, partial, found.best_state, initial_value
    )


def check(
    history: Iterable[Operation],
    *,
    initial_value: Hashable = None,
    initial_values: Mapping[Hashable, Hashable] | None = None,
    budget_steps: int = DEFAULT_BUDGET_STEPS,
) -> CheckResult:
    """Check a whole history, one key at a time.

    ``initial_values`` overrides ``initial_value`` for the keys it names.
    ``budget_steps`` bounds each key's search. Returns the first failing key's
    result, else the first unknown one, else ``ok=True``.
    """
    by_key: dict[Hashable, list[Operation]] = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    overrides = initial_values or {}
    unknown: CheckResult | None = None
    steps = 0
    for key in sorted(by_key, key=repr):
        result = check_key(
            by_key[key], initial_value=overrides.get(key, initial_value),
            budget_steps=budget_steps,
        )
        steps += result.steps
        if result.ok is False:
            return _with_totals(result, len(by_key), steps)
        if result.ok is None and unknown is None:
            unknown = result
    if unknown is not None:
        return _with_totals(unknown, len(by_key), steps)
    return CheckResult(True, None, f"linearizable ({len(by_key)} keys)", len(by_key), steps)


def _with_totals(result: CheckResult, keys_checked: int, steps: int) -> CheckResult:
    return CheckResult(
        result.ok, result.key, result.explanation, keys_checked, steps, result.history,
        result.partial, result.partial_state, result.initial_value,
    )


def _time(t: float) -> str:
    return "inf" if t == math.inf else f"{t:g}"


def describe_operation(op: Operation) -> str:
    """One line: who asked what, what came back, and when."""
    if op.kind is OpKind.READ:
        what = f"read -> {op.output!r}"
    elif op.kind is OpKind.WRITE:
        what = f"write {op.value!r}"
    else:
        outcome = "?" if op.indeterminate else ("ok" if op.output else "failed")
        what = f"cas {op.expected!r} -> {op.value!r} : {outcome}"
    tail = " (indeterminate)" if op.indeterminate else ""
    return f"[{_time(op.call)}, {_time(op.ret)}] client {op.client_id}: {what}{tail}"


def _why_not(state: Hashable, op: Operation) -> str:
    """Why ``op`` cannot come next when the register holds ``state``."""
    consistent, _ = _apply(state, op)
    if consistent:
        return "consistent here, but every continuation from it fails"
    if op.kind is OpKind.READ:
        return f"it returned {op.output!r} but the register holds {state!r}"
    if op.output:
        return f"it swapped, but the register holds {state!r}, not {op.expected!r}"
    return f"it failed, but the register holds {op.expected!r} so it must have swapped"


def describe_failure(result: CheckResult) -> str:
    """Render a non-linearizable (or unknown) verdict as numbered lines.

    Shows the key's history, the longest linearization prefix found, and for each
    operation that could have come next, why it cannot.
    """
    if result.ok:
        return "linearizable"
    numbers = {id(op): n for n, op in enumerate(result.history)}
    lines = [result.explanation, f"history of key {result.key!r} (by call time):"]
    lines += [f"  #{n} {describe_operation(op)}" for n, op in enumerate(result.history)]
    lines.append(f"longest linearizable prefix, from {result.initial_value!r}:")
    state = result.initial_value
    for op in result.partial:
        _, state = _apply(state, op)
        lines.append(f"  #{numbers[id(op)]} {describe_operation(op)}   => {state!r}")
    placed = {id(op) for op in result.partial}
    pending = [op for op in result.history if id(op) not in placed]
    deadline = min((op.ret for op in pending if not op.indeterminate), default=math.inf)
    lines.append(f"none of these can come next (each was called by {_time(deadline)}):")
    for op in pending:
        if op.call <= deadline:
            why = _why_not(result.partial_state, op)
            lines.append(f"  #{numbers[id(op)]} {describe_operation(op)}: {why}")
    return "\n".join(lines)
