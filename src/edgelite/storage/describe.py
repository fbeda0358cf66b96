"""``describe``: parameters and result columns of a statement, without running it."""

from __future__ import annotations

import dataclasses
import re

import apsw
import apsw.ext

from edgelite.storage.executor import Column
from edgelite.storage.sqlite_errors import sql_error_from_apsw
from edgelite.storage.statements import rewrite_readonly_begin, sets_pragma


@dataclasses.dataclass(frozen=True, slots=True)
class Description:
    parameter_names: tuple[str | None, ...]  # with prefix (":n", "?3"); None for "?"
    columns: tuple[Column, ...]
    is_explain: bool
    is_readonly: bool


def describe_statement(connection: apsw.Connection, sql: str) -> Description:
    rewritten, _ = rewrite_readonly_begin(sql)
    enforcing = connection.authorizer

    def no_side_effects(code: int, *args: str | None) -> int:
        # Flag pragmas take effect while being prepared; describing must not apply them.
        # Nothing else runs while preparing, so the connection's allow-list is not
        # consulted: a read-write caller describes an INSERT on a read connection too.
        return apsw.SQLITE_IGNORE if sets_pragma(code, *args[:2]) else apsw.SQLITE_OK

    connection.authorizer = no_side_effects
    try:
        details = apsw.ext.query_info(connection, rewritten)
    except apsw.Error as exc:
        raise sql_error_from_apsw(exc, phase="prepare") from exc
    finally:
        connection.authorizer = enforcing
    names = tuple(_with_prefix(rewritten, name, index)
                  for index, name in enumerate(details.bindings_names or (), start=1))
    columns = tuple(Column(str(name), decltype)
                    for name, decltype in (details.description or ()))
    return Description(names, columns, bool(details.is_explain), bool(details.is_readonly))


def _with_prefix(sql: str, name: str | None, index: int) -> str | None:
    """APSW reports names without their prefix; Hrana wants ``:n``, ``@n``, ``$n``, ``?3``."""
    if name is None:
        return None
    if name.isdigit():
        return "?" + name
    for prefix in ":@$":
        # The whole name, not the start of a longer one (`$a` must not match `:ab`).
        if re.search(re.escape(prefix + name) + r"(?![\w$])", sql):
            return prefix + name
    return ":" + name
