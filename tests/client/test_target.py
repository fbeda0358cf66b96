"""What ``connect(database)`` understands: URL schemes, URL parameters, local paths."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgelite
from edgelite.client.target import Kind, LocalTarget, RemoteTarget, parse_target


def remote(database: str, **kwargs: str) -> RemoteTarget:
    target = parse_target(database, **kwargs)
    assert isinstance(target, RemoteTarget)
    return target


@pytest.mark.parametrize(("database", "kind", "base_url"), [
    ("libsql://blog.turso.io", Kind.HTTP, "https://blog.turso.io"),
    ("libsql://blog.turso.io:8443/", Kind.HTTP, "https://blog.turso.io:8443"),
    ("libsql://127.0.0.1:8080?tls=0", Kind.HTTP, "http://127.0.0.1:8080"),
    ("http://127.0.0.1:8080", Kind.HTTP, "http://127.0.0.1:8080"),
    ("https://db.example.com/dev/ns", Kind.HTTP, "https://db.example.com/dev/ns"),
    ("ws://127.0.0.1:8080", Kind.WEBSOCKET, "ws://127.0.0.1:8080"),
    ("wss://db.example.com", Kind.WEBSOCKET, "wss://db.example.com"),
])
def test_remote_schemes(database: str, kind: Kind, base_url: str) -> None:
    target = remote(database)
    assert (target.kind, target.base_url) == (kind, base_url)
    assert target.consistency == "session" and target.auth_token is None


def test_url_parameters_and_keywords() -> None:
    target = remote("libsql://h?authToken=abc&consistency=strong&namespace=db1")
    assert (target.auth_token, target.consistency, target.namespace) == ("abc", "strong", "db1")
    target = remote("libsql://h?authToken=abc&consistency=strong", auth_token="kw",
                    consistency="eventual")
    assert (target.auth_token, target.consistency) == ("kw", "eventual")


@pytest.mark.parametrize(("database", "message"), [
    ("libsql://h?tls=0", "explicit port"),
    ("http://h?tls=1", "only meaningful"),
    ("libsql://h?tls=maybe", "0 or 1"),
    ("libsql://h?token=x", "unknown URL parameter"),
    ("ftp://h/db", "unsupported URL scheme"),
    ("http://?authToken=x", "no host"),
])
def test_bad_urls(database: str, message: str) -> None:
    with pytest.raises(edgelite.InterfaceError, match=message):
        parse_target(database)


def test_local_targets(tmp_path: Path) -> None:
    assert parse_target(":memory:") == LocalTarget(":memory:", uri=False)
    assert parse_target("app.db") == LocalTarget("app.db", uri=False)
    assert parse_target(tmp_path / "x.db") == LocalTarget(str(tmp_path / "x.db"), uri=False)
    assert parse_target(b"x.db") == LocalTarget("x.db", uri=False)
    assert parse_target("file:x.db?mode=ro") == LocalTarget("file:x.db?mode=ro", uri=True)
    with pytest.raises(edgelite.ProgrammingError):
        parse_target(42)  # type: ignore[arg-type]


def test_file_uri_and_memory_databases(tmp_path: Path) -> None:
    path = tmp_path / "uri.db"
    writer = edgelite.connect(f"file:{path}")
    writer.execute("CREATE TABLE t (v)")
    writer.execute("INSERT INTO t VALUES (1)")
    writer.commit()
    reader = edgelite.connect(f"file:{path}?mode=ro")
    assert reader.execute("SELECT v FROM t").fetchall() == [(1,)]
    with pytest.raises(edgelite.OperationalError, match="readonly"):
        reader.execute("INSERT INTO t VALUES (2)")
    reader.close()
    writer.close()
    first, second = edgelite.connect(":memory:"), edgelite.connect(":memory:")
    first.execute("CREATE TABLE t (v)")
    with pytest.raises(edgelite.OperationalError, match="no such table"):
        second.execute("SELECT * FROM t")  # each :memory: connection is its own database
    first.close()
    second.close()
    with edgelite.connect(path) as by_path:  # a PathLike, as sqlite3 accepts
        assert by_path.execute("SELECT count(*) FROM t").fetchone() == (1,)
    by_path.close()
