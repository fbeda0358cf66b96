"""`edgelite shell` against a real server and a local file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import edgelite
from edgelite.cli.shell import Shell, render_table, split_statements
from tests.support.processes import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("shell"))
    yield process
    process.stop()


def shell_process(target: str, stdin: str = "",
                  *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgelite.cli.main", "shell", target, *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def shell(target: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The shell in this process (same code as the command, without a Python start-up)."""
    out, err = io.StringIO(), io.StringIO()
    connection = edgelite.connect(target, autocommit=True)
    try:
        ok = Shell(connection, out, err).run_text(stdin)
    finally:
        connection.close()
    return subprocess.CompletedProcess([], 0 if ok else 1, out.getvalue(), err.getvalue())


SCRIPT = """
CREATE TABLE notes(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT, data BLOB);
INSERT INTO notes(body, data) VALUES ('it''s', x'0102'), ('second
line', NULL);
CREATE INDEX notes_body ON notes(body);
CREATE VIRTUAL TABLE docs USING fts5(title, body, tokenize='porter');
INSERT INTO docs VALUES ('Edge caching', 'serving from the edge');
"""


@pytest.mark.parametrize("kind", ["server", "file"])
def test_script_modes_and_dot_commands(server: ServerProcess, tmp_path: Path,
                                       kind: str) -> None:
    target = server.url if kind == "server" else str(tmp_path / "local.db")
    if kind == "server":
        shell(target, "DROP TABLE IF EXISTS notes; DROP TABLE IF EXISTS docs;")
    result = shell(target, SCRIPT)
    assert result.returncode == 0, result.stderr
    table = shell(target, "SELECT id, body FROM notes ORDER BY id;")
    assert "| id | body" in table.stdout and "it's" in table.stdout
    csv_out = shell(target, ".mode csv\nSELECT id, body FROM notes WHERE id = 1;")
    assert csv_out.stdout.splitlines() == ["id,body", "1,it's"]
    json_out = shell(target, ".mode json\nSELECT id FROM notes ORDER BY id;")
    assert json.loads(json_out.stdout) == [{"id": 1}, {"id": 2}]
    tables = shell(target, ".tables")
    assert "notes" in tables.stdout and "docs" in tables.stdout
    assert "docs_data" not in tables.stdout  # FTS5 shadow tables are hidden
    schema = shell(target, ".schema notes")
    assert "CREATE TABLE notes" in schema.stdout and "CREATE INDEX notes_body" in schema.stdout
    match = shell(target, "SELECT title FROM docs WHERE docs MATCH 'edges';")
    assert "Edge caching" in match.stdout  # porter: edges ~ edge


def test_dump_reloads_into_an_equal_database(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    assert shell(str(source), SCRIPT).returncode == 0
    dump = shell(str(source), ".dump")
    assert dump.returncode == 0, dump.stderr
    dump_file = tmp_path / "dump.sql"
    dump_file.write_text(dump.stdout)
    copy = tmp_path / "copy.db"
    loaded = shell(str(copy), f".read {dump_file}")
    assert loaded.returncode == 0, loaded.stderr
    query = ".mode json\nSELECT id, body, hex(data) AS d FROM notes ORDER BY id;"
    assert shell(str(copy), query).stdout == shell(str(source), query).stdout
    fts = "SELECT rowid, title FROM docs WHERE docs MATCH 'edge';"
    assert shell(str(copy), fts).stdout == shell(str(source), fts).stdout
    assert shell(str(copy), "INSERT INTO notes(body) VALUES ('x'); SELECT max(id) FROM notes;"
                 ).stdout.count("3") >= 1  # AUTOINCREMENT continued after the dump


def test_the_command_errors_and_exit_status(server: ServerProcess) -> None:
    bad = shell_process(server.url, "SELECT * FROM nowhere;")
    assert bad.returncode == 1 and "no such table" in bad.stderr
    unknown = shell(server.url, ".frobnicate")
    assert unknown.returncode == 1 and "unknown command" in unknown.stderr
    one_shot = shell_process(server.url, "", "SELECT 6 * 7 AS answer")
    assert one_shot.returncode == 0 and "42" in one_shot.stdout
    unreachable = shell_process("http://127.0.0.1:9", "", "SELECT 1")
    assert unreachable.returncode != 0


def test_helpers() -> None:
    statements, rest = split_statements("SELECT ';'; SELECT 2;\nSELECT")
    assert statements == ["SELECT ';';", "SELECT 2;"] and rest.strip() == "SELECT"
    assert render_table(["a"], [(None,), (b"\x01",)]).count("|") == 6
