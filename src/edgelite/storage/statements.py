"""What a statement does, learned from SQLite itself, never from parsing SQL text.

``probe_statement`` prepares the first statement of a text on a connection without
running it, with a recording authorizer installed, and returns a ``StatementInfo``:
the authorizer actions SQLite reports, the parameter names, the exact text of the
first statement and whatever follows it. ``StatementInfo`` derives from those actions
everything the executor needs to decide *before* stepping: does it write, is it DDL,
does it control transactions, which pragma does it touch.

The actions of a statement depend on its text only (not on data), so infos are cached
per text (``StatementCache``) — except schema statements: with IF [NOT] EXISTS what
SQLite reports depends on the schema of the moment, so they are probed each time. The
text handling here: the rewrite of libSQL's ``BEGIN [TRANSACTION] READONLY`` (stock
SQLite cannot parse it), and the leading keyword, consulted only when the actions
cannot tell (statements SQLite compiles without asking the authorizer anything, and
schema statements that turned out to be no-ops).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import threading
from collections import OrderedDict

import apsw

from edgelite.storage.sqlite_errors import sql_error_from_apsw


class Kind(enum.Enum):
    """The statement's role, as far as transaction handling and routing care."""

    EMPTY = "empty"  # whitespace / comments only
    READ = "read"  # SELECT, read-only pragmas, EXPLAIN
    WRITE = "write"  # INSERT / UPDATE / DELETE (and REPLACE, UPSERT)
    DDL = "ddl"  # schema changes: applied on replicas by re-running the statement
    BEGIN = "begin"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    SAVEPOINT = "savepoint"
    RELEASE = "release"
    ROLLBACK_TO = "rollback_to"
    PRAGMA_FOREIGN_KEYS = "pragma_foreign_keys"  # session-scoped, virtualised
    DENIED = "denied"  # never allowed through the SQL API (reason in ``denied_reason``)


TRANSACTION_KINDS = frozenset({Kind.BEGIN, Kind.COMMIT, Kind.ROLLBACK, Kind.SAVEPOINT,
                               Kind.RELEASE, Kind.ROLLBACK_TO})

# Pragmas a caller may read (no argument). Anything that changes connection or file
# state is refused: the writer connection is shared by every stream, and a replicated
# database must not have its durability settings changed by a client.
READ_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
    "user_version", "application_id", "schema_version", "data_version", "page_count",
    "page_size", "freelist_count", "encoding", "compile_options", "function_list",
    "pragma_list", "collation_list", "module_list", "database_list", "foreign_keys",
    "max_page_count", "auto_vacuum", "journal_mode", "synchronous", "busy_timeout",
    "cache_size", "query_only", "recursive_triggers", "defer_foreign_keys",
    "case_sensitive_like", "legacy_alter_table", "stats",
})
# Pragmas whose argument names a table or index: they only read.
TABLE_ARGUMENT_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
})
# Pragmas with an argument that are allowed on the writer, replicated as DDL segments
# (they change the database file header, which changesets do not carry).
DDL_PRAGMAS = frozenset({"user_version", "application_id"})
# Transaction-scoped pragmas a writer transaction may set (reset at commit/rollback).
TRANSACTION_PRAGMAS = frozenset({"defer_foreign_keys"})

DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit",
                              "fts3_tokenizer", "sqlite_dbpage"})
ALLOWED_VTABLE_MODULES = frozenset({"fts5", "fts4", "fts3", "rtree", "rtree_i32",
                                    "geopoly"})
INTERNAL_TABLE_PREFIX = "_edgelite"

_READONLY_BEGIN = re.compile(r"^\s*BEGIN\s+(?:TRANSACTION\s+)?READONLY\s*;?\s*$",
                             re.IGNORECASE)
_LEADING_WORD = re.compile(r"^(?:\s|--[^\n]*\n?|/\*.*?\*/)*([A-Za-z]+)", re.DOTALL)
_SCHEMA_WORDS = frozenset({"CREATE", "DROP", "ALTER"})


def leading_word(sql: str) -> str:
    """The first keyword of a statement, upper-cased ("" if none)."""
    match = _LEADING_WORD.match(sql)
    return match.group(1).upper() if match else ""


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    """One authorizer callback: SQLite's action code and its four string arguments."""

    code: int
    arg1: str | None
    arg2: str | None
    database: str | None
    trigger_or_view: str | None

    @property
    def name(self) -> str:
        return str(apsw.mapping_authorizer_function.get(self.code, self.code))


@dataclasses.dataclass(frozen=True, slots=True)
class StatementInfo:
    """Everything decided about one statement text before it runs.

    Invariant: ``first_sql + remaining_sql == sql`` (``remaining_sql`` may hold only
    whitespace and comments for a single-statement text).
    """

    sql: str
    first_sql: str
    remaining_sql: str
    kind: Kind
    actions: tuple[Action, ...]
    parameter_names: tuple[str | None, ...]
    is_insert: bool = False
    is_dml: bool = False
    is_ctas: bool = False
    readonly_begin: bool = False
    pragma_name: str | None = None
    pragma_value: str | None = None
    savepoint_name: str | None = None
    denied_reason: str | None = None

    @property
    def has_more_statements(self) -> bool:
        return not is_blank_sql(self.remaining_sql)

    @property
    def needs_writer(self) -> bool:
        return self.kind in (Kind.WRITE, Kind.DDL) or (
            self.kind is Kind.BEGIN and not self.readonly_begin)

    @property
    def controls_transaction(self) -> bool:
        return self.kind in TRANSACTION_KINDS

    @property
    def created_table(self) -> str:
        """The table a ``CREATE TABLE`` statement creates."""
        return next(str(a.arg1) for a in self.actions if a.code == apsw.SQLITE_CREATE_TABLE)

    @property
    def dropped_table(self) -> str | None:
        """The main-database table a ``DROP TABLE`` statement drops, if any."""
        return next((str(a.arg1) for a in self.actions
                     if a.code == apsw.SQLITE_DROP_TABLE and a.database in (None, "main")),
                    None)


def is_blank_sql(text: str) -> bool:
    """True if ``text`` holds only whitespace, ``;`` and comments."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace() or ch == ";":
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            return False
    return True


def sets_pragma(code: int, name: str | None, value: str | None) -> bool:
    """A pragma that assigns a value (as opposed to reading, or naming a table)."""
    return (code == apsw.SQLITE_PRAGMA and value is not None
            and (name or "").lower() not in TABLE_ARGUMENT_PRAGMAS)


def rewrite_readonly_begin(sql: str) -> tuple[str, bool]:
    """Map libSQL's ``BEGIN [TRANSACTION] READONLY`` to ``BEGIN DEFERRED``."""
    if _READONLY_BEGIN.match(sql):
        return "BEGIN DEFERRED", True
    return sql, False


def probe_statement(connection: apsw.Connection, sql: str) -> StatementInfo:
    """Prepare (never run) the first statement of ``sql`` and describe it.

    Raises ``SqlError`` (code ``SQL_INPUT_ERROR`` / ``SQL_PARSE_ERROR``) when SQLite
    cannot prepare it.
    """
    rewritten, readonly_begin = rewrite_readonly_begin(sql)
    actions: list[Action] = []
    seen: dict[str, object] = {}

    def record(code: int, arg1: str | None, arg2: str | None, database: str | None,
               trigger_or_view: str | None) -> int:
        actions.append(Action(code, arg1, arg2, database, trigger_or_view))
        # SQLite applies flag pragmas (foreign_keys, query_only, ...) while *preparing*
        # them; IGNORE turns the pragma into a no-op so probing never changes state.
        return apsw.SQLITE_IGNORE if sets_pragma(code, arg1, arg2) else apsw.SQLITE_OK

    def stop_before_step(cursor: apsw.Cursor, first_sql: str, _bindings: object) -> bool:
        seen["first_sql"] = first_sql
        seen["names"] = tuple(cursor.bindings_names)
        return False

    for attempt in (1, 2):
        actions.clear()
        cursor = connection.cursor()
        cursor.exec_trace = stop_before_step
        previous = connection.authorizer
        connection.authorizer = record
        try:
            cursor.execute(rewritten, apsw._null_bindings, can_cache=False)
        except apsw.ExecTraceAbort:
            break
        except apsw.Error as exc:
            if attempt == 2 or connection.in_transaction:
                raise sql_error_from_apsw(exc, phase="prepare") from exc
            _refresh_schema(connection, exc)  # then prepare once more
        else:
            break  # nothing to run (blank text): the exec trace never fired
        finally:
            connection.authorizer = previous
            cursor.close()
    first_sql = str(seen.get("first_sql", rewritten))
    if readonly_begin:
        first_sql, remaining = rewritten, ""
    else:
        remaining = rewritten[len(first_sql):] if rewritten.startswith(first_sql) else ""
    names = seen.get("names", ())
    assert isinstance(names, tuple)
    return _classify(sql, first_sql, remaining, tuple(actions), names, readonly_begin)


def _refresh_schema(connection: apsw.Connection, failed: apsw.Error) -> None:
    """Reload a schema another connection changed, before preparing again.

    A connection caches the schema and notices a change only when it next reads the
    database; some prepare errors (``ALTER TABLE … RENAME COLUMN`` of a column added
    through the writer, on a read connection) come from the stale copy without that
    check. Reading ``sqlite_schema`` makes SQLite compare the schema cookie and reload.
    """
    previous = connection.authorizer
    connection.authorizer = None
    try:
        connection.execute("SELECT 1 FROM main.sqlite_schema LIMIT 1").fetchall()
    except apsw.Error as exc:
        raise sql_error_from_apsw(failed, phase="prepare") from exc
    finally:
        connection.authorizer = previous


@dataclasses.dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    first_sql: str
    remaining_sql: str
    actions: tuple[Action, ...]
    parameter_names: tuple[str | None, ...]

    def info(self, kind: Kind, **extra: object) -> StatementInfo:
        return StatementInfo(self.sql, self.first_sql, self.remaining_sql, kind,
                             self.actions, self.parameter_names, **extra)  # type: ignore[arg-type]


def _classify(sql: str, first_sql: str, remaining: str, actions: tuple[Action, ...],
              names: tuple[str | None, ...], readonly_begin: bool) -> StatementInfo:
    prepared = _Prepared(sql, first_sql, remaining, actions, names)
    if not actions:
        return _classify_actionless(prepared)
    first = actions[0]
    if first.code == apsw.SQLITE_TRANSACTION:
        kind = {"BEGIN": Kind.BEGIN, "COMMIT": Kind.COMMIT,
                "ROLLBACK": Kind.ROLLBACK}[str(first.arg1)]
        return prepared.info(kind, readonly_begin=readonly_begin)
    if first.code == apsw.SQLITE_SAVEPOINT:
        kind = {"BEGIN": Kind.SAVEPOINT, "RELEASE": Kind.RELEASE,
                "ROLLBACK": Kind.ROLLBACK_TO}[str(first.arg1)]
        return prepared.info(kind, savepoint_name=first.arg2)
    if first.code == apsw.SQLITE_PRAGMA:
        return _classify_pragma(first, prepared)
    denied = denied_reason(actions)
    if denied is not None:
        return prepared.info(Kind.DENIED, denied_reason=denied)
    return _classify_data(prepared)


def _classify_actionless(prepared: _Prepared) -> StatementInfo:
    if is_blank_sql(prepared.first_sql):
        return prepared.info(Kind.EMPTY)
    word = leading_word(prepared.first_sql)
    if word == "REINDEX" or word in _SCHEMA_WORDS:
        # `DROP … IF EXISTS` a missing object / `CREATE … IF NOT EXISTS` an existing
        # one: SQLite compiles a no-op without asking the authorizer anything.
        return prepared.info(Kind.DDL)
    if word == "VACUUM":
        return prepared.info(Kind.DENIED, denied_reason=(
            "VACUUM is not allowed through the SQL API (it rewrites or copies the whole "
            "database file)"))
    if word in ("SELECT", "VALUES", "WITH", "EXPLAIN"):
        return prepared.info(Kind.READ)
    return prepared.info(Kind.DENIED, denied_reason=f"statement {word or '?'} is not allowed")


def _classify_pragma(first: Action, prepared: _Prepared) -> StatementInfo:
    name = (first.arg1 or "").lower()
    value = first.arg2
    if name == "foreign_keys":
        kind = Kind.PRAGMA_FOREIGN_KEYS
    elif name in TABLE_ARGUMENT_PRAGMAS or (value is None and name in READ_PRAGMAS):
        kind = Kind.READ
    elif value is not None and name in DDL_PRAGMAS:
        kind = Kind.DDL
    elif value is not None and name in TRANSACTION_PRAGMAS:
        kind = Kind.WRITE
    else:
        shown = f"PRAGMA {name}" + ("" if value is None else f"={value}")
        return prepared.info(Kind.DENIED, pragma_name=name, pragma_value=value,
                             denied_reason=f"{shown} is not allowed (it changes connection "
                                           "or file settings)")
    return prepared.info(kind, pragma_name=name, pragma_value=value)


def denied_reason(actions: tuple[Action, ...]) -> str | None:
    for action in actions:
        code = action.code
        if code in (apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH):
            return "ATTACH and DETACH are not allowed"
        if code in _TEMP_CODES or _changes_temp(action):
            return "temporary tables, views, indexes and triggers are not allowed"
        if code == apsw.SQLITE_FUNCTION and (action.arg2 or "").lower() in DENIED_FUNCTIONS:
            return f"function {action.arg2}() is not allowed"
        if code == apsw.SQLITE_CREATE_VTABLE and (
                (action.arg2 or "").lower() not in ALLOWED_VTABLE_MODULES):
            return f"virtual table module {action.arg2!r} is not allowed"
        if code in _RESERVED_CHECK_CODES and (target := _internal_target(action)) is not None:
            # Also inside triggers, and no triggers or indexes on reserved tables: a
            # trigger on _edgelite_state would run on every commit, unrecorded.
            return f"table {target} is reserved for edgelite"
    return None


def _changes_temp(action: Action) -> bool:
    """A write to the temp database other than SQLite's own schema bookkeeping.

    `CREATE TABLE temp.x` / `CREATE VIEW temp.v` arrive as the *non*-temp create codes on
    database "temp" (plus an INSERT into its schema table); ALTER TABLE rewrites
    references in temp objects with an UPDATE of that table, which must stay allowed.
    """
    if action.database != "temp" or action.code not in _WRITE_CODES:
        return False
    return not (action.code == apsw.SQLITE_UPDATE
                and (action.arg1 or "").lower() in ("sqlite_temp_master", "sqlite_temp_schema"))


def _internal_target(action: Action) -> str | None:
    """The reserved ``_edgelite*`` object an action writes or changes, if any."""
    if action.code == apsw.SQLITE_ALTER_TABLE:
        names = [action.arg2]
    elif action.code in _ON_TABLE_CODES:
        names = [action.arg1, action.arg2]  # (index or trigger name, table name)
    else:
        names = [action.arg1]
    for name in names:
        if name is not None and name.lower().startswith(INTERNAL_TABLE_PREFIX):
            return name
    return None


def _classify_data(prepared: _Prepared) -> StatementInfo:
    actions = prepared.actions
    codes = {a.code for a in actions}
    # `CREATE VIRTUAL TABLE IF NOT EXISTS` an existing table reports only an INSERT
    # into sqlite_master: still a schema statement.
    if codes & _DDL_CODES or leading_word(prepared.first_sql) in _SCHEMA_WORDS:
        is_ctas = apsw.SQLITE_CREATE_TABLE in codes and apsw.SQLITE_SELECT in codes
        return prepared.info(Kind.DDL, is_ctas=is_ctas)
    main_writes = [a for a in actions if a.code in _DML_CODES and a.trigger_or_view is None
                   and a.database in (None, "main")]
    if main_writes:
        return prepared.info(Kind.WRITE, is_dml=True,
                             is_insert=main_writes[0].code == apsw.SQLITE_INSERT)
    return prepared.info(Kind.READ)


_TEMP_CODES = frozenset({
    apsw.SQLITE_CREATE_TEMP_INDEX, apsw.SQLITE_CREATE_TEMP_TABLE,
    apsw.SQLITE_CREATE_TEMP_TRIGGER, apsw.SQLITE_CREATE_TEMP_VIEW,
    apsw.SQLITE_DROP_TEMP_INDEX, apsw.SQLITE_DROP_TEMP_TABLE,
    apsw.SQLITE_DROP_TEMP_TRIGGER, apsw.SQLITE_DROP_TEMP_VIEW,
})
_DDL_CODES = frozenset({
    apsw.SQLITE_CREATE_INDEX, apsw.SQLITE_CREATE_TABLE, apsw.SQLITE_CREATE_TRIGGER,
    apsw.SQLITE_CREATE_VIEW, apsw.SQLITE_DROP_INDEX, apsw.SQLITE_DROP_TABLE,
    apsw.SQLITE_DROP_TRIGGER, apsw.SQLITE_DROP_VIEW, apsw.SQLITE_ALTER_TABLE,
    apsw.SQLITE_REINDEX, apsw.SQLITE_ANALYZE, apsw.SQLITE_CREATE_VTABLE,
    apsw.SQLITE_DROP_VTABLE,
})
_ON_TABLE_CODES = frozenset({
    apsw.SQLITE_CREATE_INDEX, apsw.SQLITE_DROP_INDEX, apsw.SQLITE_CREATE_TRIGGER,
    apsw.SQLITE_DROP_TRIGGER,
})
_DML_CODES = frozenset({apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE})
_WRITE_CODES = _DML_CODES | _DDL_CODES
# ANALYZE only writes sqlite_stat1 about a table; a plain `ANALYZE` visits every table,
# the reserved one included, and must not be refused for it.
_RESERVED_CHECK_CODES = _WRITE_CODES - {apsw.SQLITE_ANALYZE}


class StatementCache:
    """Bounded, thread-safe cache of ``StatementInfo`` by statement text.

    Probing needs a connection, so callers pass the one they own; the result does not
    depend on which connection probed it.
    """

    def __init__(self, capacity: int = 4096) -> None:
        assert capacity > 0
        self._capacity = capacity
        self._infos: OrderedDict[str, StatementInfo] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sql: str) -> StatementInfo | None:
        with self._lock:
            info = self._infos.get(sql)
            if info is not None:
                self._infos.move_to_end(sql)
            return info

    def info(self, connection: apsw.Connection, sql: str) -> StatementInfo:
        cached = self.get(sql)
        if cached is not None:
            return cached
        info = probe_statement(connection, sql)
        if info.kind is Kind.DDL:
            # IF [NOT] EXISTS makes what SQLite reports for a schema statement (a no-op,
            # or not: is it a CREATE TABLE … AS SELECT?) depend on the schema at the
            # time, so these are probed again each time (they are rare).
            return info
        with self._lock:
            self._infos[sql] = info
            if len(self._infos) > self._capacity:
                self._infos.popitem(last=False)
        return info
