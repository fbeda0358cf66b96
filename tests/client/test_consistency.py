"""Consistency per connection: the level goes out as ``x-edgelite-consistency``, the
highest replication index seen comes back as ``x-edgelite-bookmark`` (session level),
and ``conn.replication_index`` exposes it.

HTTP traffic is observed through a recording reverse proxy in front of the real server;
the WebSocket form (statement ``replication_index``) is checked on the frames the wire
builds and on a real socket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import edgelite
from edgelite.client.exchange import Pipeline
from edgelite.client.wire_ws import WsWire
from edgelite.protocol.hrana import messages as m
from tests.support.processes import ServerProcess

INDEX_HEADER = "x-edgelite-replication-index"


class RecordingProxy(ThreadingHTTPServer):
    """Forwards POSTs to ``upstream`` and records each exchange's headers."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.client = httpx.Client()
        self.exchanges: list[tuple[dict[str, str], dict[str, str], Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests(self) -> list[dict[str, str]]:
        with self.lock:
            return [request for request, _, _ in self.exchanges]


class _ProxyHandler(BaseHTTPRequestHandler):
    server: RecordingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()
                   if k.lower() not in ("host", "content-length", "connection")}
        response = self.server.client.post(self.server.upstream + self.path, content=body,
                                           headers=headers)
        with self.server.lock:
            self.server.exchanges.append((headers, dict(response.headers),
                                          json.loads(body)))
        self.send_response(response.status_code)
        for name in ("content-type", INDEX_HEADER):
            if name in response.headers:
                self.send_header(name, response.headers[name])
        self.send_header("content-length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[RecordingProxy]:
    recorder = RecordingProxy(server.url)
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    yield recorder
    recorder.shutdown()
    recorder.server_close()
    recorder.client.close()
    thread.join()


def test_session_level_sends_back_the_highest_index(proxy: RecordingProxy,
                                                    table: str) -> None:
    conn = edgelite.connect(proxy.url)
    assert conn.consistency == "session" and conn.replication_index is None
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    conn.commit()
    index = conn.replication_index
    assert index is not None
    conn.execute(f"SELECT v FROM {table}").fetchall()
    conn.close()
    sent = proxy.requests()
    assert all(r["x-edgelite-consistency"] == "session" for r in sent)
    assert "x-edgelite-bookmark" not in sent[0]
    assert sent[-1]["x-edgelite-bookmark"] == str(index)
    served = [int(response[INDEX_HEADER]) for _, response, _ in proxy.exchanges]
    assert index == max(served)
    bookmarks = [int(r["x-edgelite-bookmark"]) for r in sent if "x-edgelite-bookmark" in r]
    assert bookmarks == sorted(bookmarks)  # monotonic: never goes back


@pytest.mark.parametrize(("url_suffix", "keyword", "expected"), [
    ("?consistency=strong", None, "strong"),
    ("?consistency=eventual", None, "eventual"),
    ("?consistency=eventual", "strong", "strong"),  # the keyword wins
    ("", "eventual", "eventual"),
])
def test_other_levels_send_no_bookmark(proxy: RecordingProxy, url_suffix: str,
                                       keyword: str | None, expected: str) -> None:
    conn = edgelite.connect(proxy.url + url_suffix, consistency=keyword)
    assert conn.consistency == expected
    for _ in range(2):
        conn.execute("SELECT 1").fetchall()
    assert conn.replication_index is not None  # still tracked, just not sent
    conn.close()
    sent = proxy.requests()
    assert [r["x-edgelite-consistency"] for r in sent] == [expected, expected]
    assert all("x-edgelite-bookmark" not in r for r in sent)


def test_token_is_sent_as_bearer(proxy: RecordingProxy) -> None:
    conn = edgelite.connect(proxy.url + "?authToken=url-token")
    conn.execute("SELECT 1")
    conn.close()
    conn = edgelite.connect(proxy.url + "?authToken=url-token", auth_token="keyword-token")
    conn.execute("SELECT 1")
    conn.close()
    assert [r["authorization"] for r in proxy.requests()] == [
        "Bearer url-token", "Bearer keyword-token"]


def test_websocket_statements_carry_the_bookmark() -> None:
    wire = WsWire(auth_token=None)
    wire.start("hrana3")
    stmt = m.Stmt(sql="SELECT 1")
    frames, _ = wire.frames(Pipeline((m.ExecuteRequest(stmt), m.CloseRequest()), None,
                                     "session", 42))
    messages = [json.loads(frame) for frame in frames]
    assert [msg["request"]["type"] for msg in messages] == [
        "open_stream", "execute", "close_stream"]
    assert messages[1]["request"]["stmt"]["replication_index"] == "42"


def test_websocket_connection_tracks_the_index(server: ServerProcess, table: str) -> None:
    conn = edgelite.connect(server.ws_url, consistency="session")
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    conn.commit()
    assert conn.replication_index is not None
    first = conn.replication_index
    conn.execute(f"INSERT INTO {table} VALUES (2)")
    conn.commit()
    assert conn.replication_index is not None and conn.replication_index >= first
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (2,)
    conn.close()
