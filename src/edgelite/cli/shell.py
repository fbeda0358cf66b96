"""``edgelite shell URL|FILE``: an interactive SQL shell in the spirit of ``sqlite3``.

Statements end with ``;`` (a line may hold several; a statement may span lines) and
run in autocommit mode unless you BEGIN. Dot commands: ``.tables``, ``.schema``,
``.dump``, ``.read FILE``, ``.mode table|csv|json|line``, ``.headers on|off``,
``.help``, ``.quit``. History is kept in ``~/.edgelite_history`` when interactive.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import click

import edgelite

MODES = ("table", "csv", "json", "line")
HISTORY_FILE = Path.home() / ".edgelite_history"
_SHADOW_SUFFIXES = {"fts5": ("_data", "_idx", "_content", "_docsize", "_config"),
                    "fts4": ("_content", "_segments", "_segdir", "_docsize", "_stat"),
                    "fts3": ("_content", "_segments", "_segdir", "_docsize", "_stat"),
                    "rtree": ("_node", "_rowid", "_parent")}


class Shell:
    def __init__(self, connection: Any, out: TextIO, err: TextIO) -> None:
        self.connection = connection
        self.out = out
        self.err = err
        self.mode = "table"
        self.headers = True
        self.running = True
        self._commands: dict[str, Callable[[list[str]], None]] = {
            ".tables": self.cmd_tables, ".schema": self.cmd_schema, ".dump": self.cmd_dump,
            ".read": self.cmd_read, ".mode": self.cmd_mode, ".headers": self.cmd_headers,
            ".help": self.cmd_help, ".quit": self.cmd_quit, ".exit": self.cmd_quit,
        }

    # --- input -----------------------------------------------------------------------------

    def run_text(self, text: str) -> bool:
        """Run a script (statements and dot commands); False if anything failed."""
        ok = True
        buffer = ""
        for line in text.splitlines():
            if not buffer and line.strip().startswith("."):
                ok = self.dot(line.strip()) and ok
                if not self.running:
                    return ok
                continue
            buffer += line + "\n"
            statements, buffer = split_statements(buffer)
            for statement in statements:
                ok = self.execute(statement) and ok
        if buffer.strip():
            ok = self.execute(buffer) and ok
        return ok

    def dot(self, line: str) -> bool:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.err.write(f"Error: {exc}\n")
            return False
        command = self._commands.get(words[0])
        if command is None:
            self.err.write(f"Error: unknown command {words[0]!r}; try .help\n")
            return False
        try:
            command(words[1:])
        except edgelite.Error as exc:
            self.err.write(f"Error: {exc}\n")
            return False
        return True

    def execute(self, sql: str) -> bool:
        try:
            cursor = self.connection.cursor()
            cursor.execute(sql)
            rows = cursor.fetchall() if cursor.description else []
        except edgelite.Error as exc:
            self.err.write(f"Error: {exc}\n")
            return False
        if cursor.description:
            columns = [d[0] for d in cursor.description]
            self.show(columns, [tuple(r) for r in rows])
        return True

    # --- output ------------------------------------------------------------------------------

    def show(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.mode == "csv":
            writer = csv.writer(self.out, lineterminator="\n")
            if self.headers:
                writer.writerow(columns)
            writer.writerows([[_text(v) for v in row] for row in rows])
        elif self.mode == "json":
            self.out.write(json.dumps([dict(zip(columns, map(_jsonable, row), strict=True))
                                       for row in rows]) + "\n")
        elif self.mode == "line":
            width = max((len(c) for c in columns), default=0)
            for row in rows:
                for column, value in zip(columns, row, strict=True):
                    self.out.write(f"{column:>{width}} = {_text(value)}\n")
                self.out.write("\n")
        else:
            self.out.write(render_table(columns, rows, headers=self.headers))

    # --- dot commands ------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        cursor.execute(sql, tuple(args))
        return [tuple(row) for row in cursor.fetchall()]

    def cmd_tables(self, args: list[str]) -> None:
        pattern = args[0] if args else "%"
        names = [r[0] for r in self._query(
            "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name LIKE ? "
            "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_edgelite%' ESCAPE '\\' "
            "ORDER BY name", (pattern,))]
        shadows = shadow_tables(self._query(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table'"))
        self.out.write("  ".join(n for n in names if n not in shadows) + ("\n" if names else ""))

    def cmd_schema(self, args: list[str]) -> None:
        pattern = args[0] if args else "%"
        for (sql,) in self._query(
                "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND tbl_name LIKE ? "
                "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_edgelite%' ESCAPE '\\' "
                "ORDER BY tbl_name, type DESC, name", (pattern,)):
            self.out.write(f"{sql};\n")

    def cmd_dump(self, args: list[str]) -> None:
        for line in dump_lines(self._query, args[0] if args else None):
            self.out.write(line + "\n")

    def cmd_read(self, args: list[str]) -> None:
        if len(args) != 1:
            self.err.write("Error: .read needs exactly one file name\n")
            return
        path = Path(args[0]).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            self.err.write(f"Error: cannot read {path}: {exc.strerror}\n")
            return
        self.run_text(text)

    def cmd_mode(self, args: list[str]) -> None:
        if not args or args[0] not in MODES:
            self.err.write(f"Error: .mode takes one of {', '.join(MODES)} "
                           f"(current: {self.mode})\n")
            return
        self.mode = args[0]

    def cmd_headers(self, args: list[str]) -> None:
        if not args or args[0] not in ("on", "off"):
            self.err.write("Error: .headers takes on or off\n")
            return
        self.headers = args[0] == "on"

    def cmd_help(self, _args: list[str]) -> None:
        self.out.write(__doc__.split("\n\n", 1)[1] if __doc__ else "")
        self.out.write("\n")

    def cmd_quit(self, _args: list[str]) -> None:
        self.running = False


def split_statements(buffer: str) -> tuple[list[str], str]:
    """Complete statements at the front of ``buffer``, and what remains."""
    statements: list[str] = []
    start = 0
    for index, char in enumerate(buffer):
        if char == ";" and sqlite3.complete_statement(buffer[start:index + 1]):
            statement = buffer[start:index + 1].strip()
            if statement.strip(";").strip():
                statements.append(statement)
            start = index + 1
    return statements, buffer[start:]


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                 headers: bool = True) -> str:
    cells = [[_text(v) for v in row] for row in rows]
    widths = [len(c) if headers else 0 for c in columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"
    lines = [rule]
    if headers:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths,
                                                               strict=True)) + " |\n")
        lines.append(rule)
    for row in cells:
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths,
                                                               strict=True)) + " |\n")
    if cells:
        lines.append(rule)
    return "".join(lines)


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    return str(value)


def _jsonable(value: Any) -> Any:
    return {"blob_hex": value.hex()} if isinstance(value, bytes) else value


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else \
            ("9e999" if value > 0 else "-9e999")
    if isinstance(value, bytes):
        return "X'" + value.hex().upper() + "'"
    return "'" + str(value).replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def shadow_tables(tables: Sequence[tuple[Any, ...]]) -> set[str]:
    """Names of the shadow tables of FTS and R*Tree virtual tables."""
    shadows: set[str] = set()
    for name, sql in tables:
        text = (sql or "").lower()
        if "create virtual table" not in text:
            continue
        for module, suffixes in _SHADOW_SUFFIXES.items():
            if f"using {module}" in text:
                shadows.update(f"{name}{suffix}" for suffix in suffixes)
    return shadows


def dump_lines(query: Callable[..., list[tuple[Any, ...]]],
               only: str | None) -> Iterator[str]:
    """SQL text that recreates the database (or one table), like sqlite3's .dump."""
    yield "PRAGMA foreign_keys=OFF;"
    yield "BEGIN TRANSACTION;"
    objects = query("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT "
                    "NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_edgelite%' "
                    "ESCAPE '\\' ORDER BY rowid")
    shadows = shadow_tables([(o[1], o[3]) for o in objects if o[0] == "table"])
    tables = [o for o in objects if o[0] == "table" and o[1] not in shadows
              and (only is None or o[1] == only)]
    for _type, name, _table, sql in tables:
        yield f"{sql};"
        virtual = "create virtual table" in sql.lower()
        columns = [row[1] for row in query(f"PRAGMA table_info({_quote(name)})")]
        column_list = ", ".join(_quote(c) for c in columns)
        select = f"SELECT rowid, * FROM {_quote(name)}" if virtual or not _without_rowid(sql) \
            else f"SELECT * FROM {_quote(name)}"
        for row in query(select):
            if virtual or not _without_rowid(sql):
                values = ", ".join(sql_literal(v) for v in row)
                yield f"INSERT INTO {_quote(name)}(rowid, {column_list}) VALUES({values});"
            else:
                values = ", ".join(sql_literal(v) for v in row)
                yield f"INSERT INTO {_quote(name)}({column_list}) VALUES({values});"
    sequences = query("SELECT name, seq FROM sqlite_sequence") if any(
        o[1] == "sqlite_sequence" for o in query(
            "SELECT type, name FROM sqlite_schema WHERE name='sqlite_sequence'")) else []
    for name, seq in sequences:
        if only is None or name == only:
            yield "DELETE FROM sqlite_sequence WHERE name=" + sql_literal(name) + ";"
            yield f"INSERT INTO sqlite_sequence VALUES({sql_literal(name)}, {int(seq)});"
    for kind, name, table, sql in objects:
        if kind in ("index", "trigger", "view") and name not in shadows and (
                only is None or table == only):
            yield f"{sql};"
    yield "COMMIT;"


def _without_rowid(sql: str) -> bool:
    return "without rowid" in " ".join(sql.lower().split())


def _interactive_loop(shell: Shell) -> None:
    try:
        import readline

        if HISTORY_FILE.exists():
            readline.read_history_file(HISTORY_FILE)
    except (ImportError, OSError):
        readline = None  # type: ignore[assignment]
    buffer = ""
    while shell.running:
        try:
            line = input("   ...> " if buffer else "edgelite> ")
        except EOFError:
            shell.out.write("\n")
            break
        except KeyboardInterrupt:
            shell.out.write("^C\n")
            buffer = ""
            continue
        if not buffer and line.strip().startswith("."):
            shell.dot(line.strip())
            continue
        buffer += line + "\n"
        statements, buffer = split_statements(buffer)
        for statement in statements:
            shell.execute(statement)
    if readline is not None:
        try:
            readline.set_history_length(5000)
            readline.write_history_file(HISTORY_FILE)
        except OSError:
            pass


@click.command()
@click.argument("target")
@click.argument("sql", required=False)
@click.option("--auth-token", envvar="EDGELITE_AUTH_TOKEN",
              help="Token for a server with auth (or put ?authToken= in the URL).")
@click.option("--mode", type=click.Choice(MODES), default="table", show_default=True,
              help="Output format.")
def shell(target: str, sql: str | None, auth_token: str | None, mode: str) -> None:
    """Open a SQL shell on a server URL or a local database FILE.

    With SQL, run it and exit; with input piped on stdin, run that and exit.
    """
    try:
        connection = edgelite.connect(target, auth_token=auth_token, autocommit=True)
    except edgelite.Error as exc:
        raise click.ClickException(f"cannot open {target}: {exc}") from exc
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", line_buffering=True) \
        if hasattr(sys.stdout, "buffer") else sys.stdout
    runner = Shell(connection, out, sys.stderr)
    runner.mode = mode
    try:
        if sql is not None:
            ok = runner.run_text(sql if sql.rstrip().endswith(";") else sql + ";")
        elif not sys.stdin.isatty():
            ok = runner.run_text(sys.stdin.read())
        else:
            out.write(f"edgelite {edgelite.__version__} shell on {target}. "
                      "Type .help for help.\n")
            _interactive_loop(runner)
            ok = True
    finally:
        out.flush()
        connection.close()
    if not ok:
        sys.exit(1)


__all__ = ["Shell", "dump_lines", "render_table", "shell", "split_statements"]
