"""The seed's Python snippets (the product vision, /work/shared/seed.txt), run as
written against every mode. Only the import line and the URL change: the snippet's
``import sqlite3`` becomes ``import edgelite as sqlite3`` and its Turso URL becomes this
test's server (``libsql://127.0.0.1:PORT?authToken=...&tls=0``, ``ws://...``) or a local
file. The IoT loop runs as written (``while True``) with a ``time.sleep`` that ends it
after a few readings.
"""

from __future__ import annotations

import re
import sqlite3 as stdlib_sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import edgelite
from tests.client.conftest import AuthServer, start_auth_server

# --- the snippets, verbatim ------------------------------------------------------------

POSTS = '''import sqlite3

# Connect to the Turso endpoint (replace with your DB URL)
conn = sqlite3.connect("libsql://blog.turso.io?authToken=YOUR_API_TOKEN")
cur = conn.cursor()

# Create a simple table
cur.execute("""
    CREATE TABLE IF NOT EXISTS posts (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT,
        created_at DATETIME DEFAULT CURRENT_TIMESTAMP
    )
""")
conn.commit()

# Insert a sample post
cur.execute(
    "INSERT INTO posts (title, body) VALUES (?, ?)",
    ("Hello Turso!", "Edge‑first SQLite is finally here.")
)
conn.commit()

# Fetch and print the post
cur.execute("SELECT id, title, created_at FROM posts")
print(cur.fetchall())
conn.close()
'''

IOT = '''import sqlite3, random, time

conn = sqlite3.connect("libsql://iot.turso.io?authToken=TOKEN")
cur = conn.cursor()
cur.execute("""
    CREATE TABLE IF NOT EXISTS readings (
        device_id TEXT,
        temperature REAL,
        humidity REAL,
        ts DATETIME DEFAULT CURRENT_TIMESTAMP
    )
""")
conn.commit()

while True:
    cur.execute(
        "INSERT INTO readings (device_id, temperature, humidity) VALUES (?, ?, ?)",
        ("gateway-01", random.uniform(20, 30), random.uniform(30, 70))
    )
    conn.commit()
    time.sleep(5)  # simulate sensor interval
'''

UPSERT_NOTE = '''def upsert_note(conn, note_id, content, version):
    cur = conn.cursor()
    cur.execute("""
        INSERT INTO notes (id, content, version)
        VALUES (?, ?, ?)
        ON CONFLICT(id) DO UPDATE SET
            content = CASE WHEN excluded.version > notes.version
                           THEN excluded.content ELSE notes.content END,
            version = MAX(excluded.version, notes.version)
    """, (note_id, content, version))
    conn.commit()
'''

FTS = '''conn = sqlite3.connect("libsql://search.turso.io?authToken=TOKEN")
cur = conn.cursor()

# Create an FTS virtual table
cur.execute("""
    CREATE VIRTUAL TABLE IF NOT EXISTS articles USING fts5(
        title, body, tokenize='porter'
    )
""")
conn.commit()

# Index a few rows
cur.executemany(
    "INSERT INTO articles (title, body) VALUES (?, ?)",
    [
        ("TursoDB Overview", "Distributed SQLite for edge workloads."),
        ("Edge Caching", "How to serve personalized content from the edge."),
        ("IoT Insights", "Collecting sensor data with minimal latency.")
    ]
)
conn.commit()

# Perform a search
cur.execute("SELECT rowid, title FROM articles WHERE articles MATCH 'edge'")
print(cur.fetchall())
'''

_TURSO_URL = re.compile(r'"libsql://[a-z]+\.turso\.io\?authToken=[A-Z_]+"')


class _EnoughReadings(Exception):
    """Ends the IoT snippet's ``while True`` loop from its ``time.sleep``."""


class _SensorClock:
    """Stands in for the ``time`` module in the IoT snippet: no waiting, three readings."""

    def __init__(self, readings: int) -> None:
        self.readings = readings
        self.slept_s: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept_s.append(seconds)
        if len(self.slept_s) >= self.readings:
            raise _EnoughReadings


def adapt(snippet: str, url: str) -> str:
    """The two edits allowed: the import line, and the URL (to this test's database)."""
    if snippet.startswith("import sqlite3, random, time\n"):
        snippet = snippet.replace("import sqlite3, random, time\n",
                                  "import edgelite as sqlite3, random\n", 1)
    elif snippet.startswith("import sqlite3\n"):
        snippet = snippet.replace("import sqlite3\n", "import edgelite as sqlite3\n", 1)
    else:
        snippet = "import edgelite as sqlite3\n" + snippet
    adapted, count = _TURSO_URL.subn(lambda _: repr(url), snippet)
    assert count <= 1
    return adapted


def run(snippet: str, url: str, **names: Any) -> dict[str, Any]:
    """Execute the adapted snippet; close the connection it leaves open (two of the
    four never call ``conn.close()``)."""
    namespace: dict[str, Any] = {"__name__": "seed_snippet", **names}
    try:
        exec(compile(adapt(snippet, url), "<seed snippet>", "exec"), namespace)
    finally:
        conn = namespace.get("conn")
        if isinstance(conn, edgelite.Connection):
            conn.close()
    return namespace


@pytest.fixture(scope="module", params=["libsql", "ws", "local"])
def seed_url(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database per mode, so each mode sees exactly what its snippets wrote."""
    directory = tmp_path_factory.mktemp(f"seed-{request.param}")
    if request.param == "local":
        yield str(directory / "seed.db")
        return
    server: AuthServer = start_auth_server(directory, name="seed")
    port = server.process.port
    if request.param == "libsql":
        yield f"libsql://127.0.0.1:{port}?authToken={server.token}&tls=0"
    else:
        yield f"ws://127.0.0.1:{port}?authToken={server.token}"
    server.process.stop()


def test_posts_snippet(seed_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(POSTS, seed_url)
    printed = capsys.readouterr().out.strip()
    rows = eval(printed, {})  # the snippet prints a list of tuples
    assert len(rows) == 1
    post_id, title, created_at = rows[0]
    assert (post_id, title) == (1, "Hello Turso!")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", created_at)
    conn = edgelite.connect(seed_url)
    assert conn.execute("SELECT body FROM posts").fetchone() == (
        "Edge\u2011first SQLite is finally here.",)
    conn.close()


def test_iot_snippet(seed_url: str) -> None:
    clock = _SensorClock(readings=3)
    with pytest.raises(_EnoughReadings):
        run(IOT, seed_url, time=clock)
    assert clock.slept_s == [5, 5, 5]
    conn = edgelite.connect(seed_url)
    rows = conn.execute("SELECT device_id, temperature, humidity, ts FROM readings").fetchall()
    conn.close()
    assert len(rows) == 3
    for device_id, temperature, humidity, ts in rows:
        assert device_id == "gateway-01"
        assert 20 <= temperature <= 30 and 30 <= humidity <= 70
        assert isinstance(temperature, float) and ts is not None


def test_fts5_snippet(seed_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(FTS, seed_url)
    assert eval(capsys.readouterr().out.strip(), {}) == [
        (1, "TursoDB Overview"), (2, "Edge Caching")]
    conn = edgelite.connect(seed_url)
    stemmed = conn.execute(  # porter: "collect" finds "Collecting"
        "SELECT title FROM articles WHERE articles MATCH 'collect'").fetchall()
    conn.close()
    assert stemmed == [("IoT Insights",)]


def test_upsert_note_keeps_the_highest_version(seed_url: str) -> None:
    upsert_note = run(UPSERT_NOTE, seed_url)["upsert_note"]
    first, second = edgelite.connect(seed_url), edgelite.connect(seed_url)
    first.execute("CREATE TABLE IF NOT EXISTS notes "
                  "(id INTEGER PRIMARY KEY, content TEXT, version INTEGER)")
    first.commit()
    upsert_note(first, 1, "draft", 1)
    upsert_note(second, 1, "final", 3)
    upsert_note(first, 1, "stale edit", 2)  # an older version arriving late loses
    upsert_note(second, 2, "other note", 1)
    rows = first.execute("SELECT id, content, version FROM notes ORDER BY id").fetchall()
    first.close()
    second.close()
    assert rows == [(1, "final", 3), (2, "other note", 1)]


def test_local_mode_matches_stdlib_sqlite3(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The snippet prints the same thing through edgelite and through sqlite3 itself."""
    run(FTS, str(tmp_path / "edgelite.db"))
    ours = capsys.readouterr().out
    namespace: dict[str, Any] = {"sqlite3": stdlib_sqlite3}
    exec(_TURSO_URL.sub(repr(str(tmp_path / "stdlib.db")), FTS), namespace)
    assert capsys.readouterr().out == ours
