"""Running exactly one statement on a connection, within bounds.

``StatementRunner`` owns the per-connection plumbing: a progress handler that
interrupts a statement past its deadline, an exec trace that captures the result
columns (APSW forgets them once a statement completes), argument binding with sqld's
rules, and the response budget (rows and bytes) of the request being served.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import apsw

from edgelite.errors import LimitExceededError, SqlError
from edgelite.storage.sqlite_errors import sql_error_from_apsw
from edgelite.storage.statements import Kind, StatementInfo

Value = None | int | float | str | bytes

_PROGRESS_STEPS = 1000  # VM instructions between deadline checks


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    name: str
    decltype: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class StatementResult:
    columns: tuple[Column, ...]
    rows: list[tuple[Value, ...]]
    affected_row_count: int
    last_insert_rowid: int | None
    rows_read: int
    rows_written: int
    duration_ms: float


@dataclasses.dataclass(slots=True)
class ResponseBudget:
    """What one request may still return; shared by all its statements."""

    bytes_left: int
    rows_per_statement_max: int

    def charge(self, row: tuple[Value, ...]) -> None:
        size = 8
        for value in row:
            size += len(value) + 8 if isinstance(value, str | bytes) else 16
        self.bytes_left -= size
        if self.bytes_left < 0:
            raise LimitExceededError(
                "Response is too large: the request's results exceed response_bytes_max",
                limit="response_bytes_max", code="RESPONSE_TOO_LARGE")


def bind_arguments(info: StatementInfo, args: Sequence[Value],
                   named_args: Mapping[str, Value]) -> tuple[Value, ...]:
    """Map Hrana arguments onto the statement's parameter slots, as sqld does.

    Slot names come from SQLite without their prefix (``:x`` -> ``x``, ``?3`` -> ``3``,
    anonymous ``?`` -> None). ``?NNN`` and ``?`` take the positional argument of their
    slot number; ``:x`` / ``@x`` / ``$x`` take the named argument given with a prefix,
    or else the bare name ``x``.
    """
    if args and named_args:
        raise SqlError("Arguments do not match SQL parameters: both positional and named "
                       "arguments were given", code="ARGS_BOTH_POSITIONAL_AND_NAMED")
    names = info.parameter_names
    if len(args) > len(names):
        raise SqlError(f"Arguments do not match SQL parameters: too many parameters, "
                       f"expected {len(names)}, got {len(args)}", code="ARGS_INVALID")
    values: list[Value] = []
    for slot, name in enumerate(names, start=1):
        if name is None or name.isdigit():
            if slot <= len(args):
                values.append(args[slot - 1])
                continue
            raise SqlError(f"Arguments do not match SQL parameters: value for parameter "
                           f"{slot} not found", code="ARGS_INVALID")
        for key in (":" + name, "@" + name, "$" + name, name):
            if key in named_args:
                values.append(named_args[key])
                break
        else:
            if slot <= len(args):
                values.append(args[slot - 1])  # positional values fill named slots too
                continue
            raise SqlError(f"Arguments do not match SQL parameters: value for parameter "
                           f"{name} not found", code="ARGS_INVALID")
    return tuple(values)


class StatementRunner:
    """Executes single statements on one connection (owned by one thread)."""

    def __init__(self, connection: apsw.Connection, timeout_ms: int) -> None:
        self.connection = connection
        self.timeout_ms = timeout_ms
        self._deadline = float("inf")
        self._columns: tuple[Column, ...] = ()
        self._prepared = False
        connection.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)
        self._cursor = self._new_cursor()

    def _new_cursor(self) -> apsw.Cursor:
        cursor = self.connection.cursor()
        cursor.exec_trace = self._capture_columns
        return cursor

    def _abandon_statement(self) -> None:
        # A statement we stopped stepping (a budget was exceeded) stays active: it keeps
        # a read snapshot on a reader, and on the writer it makes the savepoint rollback
        # that undoes it fail with "database is locked". Reset it by discarding the cursor.
        self._cursor.close(force=True)
        self._cursor = self._new_cursor()

    def _past_deadline(self) -> bool:
        return time.monotonic() > self._deadline

    def _capture_columns(self, cursor: apsw.Cursor, _sql: str, _bindings: object) -> bool:
        self._columns = tuple(Column(str(n), d) for n, d in cursor.get_description())
        self._prepared = True
        return True

    def run(self, info: StatementInfo, bindings: tuple[Value, ...], *, want_rows: bool,
            budget: ResponseBudget) -> StatementResult:
        assert info.kind not in (Kind.EMPTY, Kind.DENIED), info.kind
        started = time.perf_counter()
        self._deadline = time.monotonic() + self.timeout_ms / 1000
        self._columns = ()
        self._prepared = False
        connection = self.connection
        changes_before = connection.total_changes()
        rows: list[tuple[Value, ...]] = []
        count = 0
        try:
            for row in self._cursor.execute(info.first_sql, bindings):
                count += 1
                if count > budget.rows_per_statement_max:
                    raise LimitExceededError(
                        f"statement returned more than {budget.rows_per_statement_max} rows",
                        limit="rows_per_response_max", code="RESPONSE_TOO_LARGE")
                if want_rows:
                    budget.charge(row)
                    rows.append(row)
        except apsw.Error as exc:
            raise sql_error_from_apsw(exc, phase="step" if self._prepared else "prepare") from exc
        except BaseException:
            self._abandon_statement()
            raise
        finally:
            self._deadline = float("inf")
        written = connection.total_changes() - changes_before
        return StatementResult(
            columns=self._columns,
            rows=rows,
            affected_row_count=connection.changes() if info.is_dml else 0,
            last_insert_rowid=connection.last_insert_rowid() if info.is_insert else None,
            rows_read=count,
            rows_written=written,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def run_internal(self, sql: str, bindings: tuple[Value, ...] = ()) -> None:
        """Run edgelite's own SQL, uncached (callers lift the authorizer if needed)."""
        cursor = self.connection.cursor()
        for _ in cursor.execute(sql, bindings, can_cache=False):
            pass
        cursor.close()
