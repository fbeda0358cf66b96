"""Client-side cost of one point query, edgelite's DB-API client against baselines measured
in the same run, on the same data (not a test).

    .venv/bin/python bench/client_overhead.py [--queries 2000] [--rounds 5]

Every case runs ``SELECT v FROM kv WHERE k = ?`` (1 000 rows, k cycling) and fetches
the row. Rows:

* ``apsw``               — APSW in this process on a copy of the data (no client, no network);
* ``edgelite local``     — ``edgelite.connect(path)``: the same file through our session;
* ``raw httpx``          — a hand-built ``[execute, close]`` pipeline posted with httpx
                           (the HTTP floor: transport + server, no client logic);
* ``edgelite http``      — ``edgelite.connect("http://...")``;
* ``edgelite aio http``  — ``edgelite.aio.connect("http://...")``;
* ``raw websocket``      — hand-built hrana3 frames on one socket (the WebSocket floor);
* ``edgelite ws``        — ``edgelite.connect("ws://...")``;
* ``libsql-client ws``   — PyPI ``libsql-client`` ``create_client_sync("ws://...")``;
* ``libsql-client http`` — the same with an http URL (it then uses ``/v1/execute``).

Columns: wall-clock µs per query (median of ``--rounds``) and client CPU µs per query
(``time.process_time`` of this process, which excludes the server process: the cost the
client itself adds). Ratios compare each remote case with ``libsql-client ws`` and with
the raw floor of its transport.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import apsw  # noqa: E402
import httpx  # noqa: E402
import libsql_client  # noqa: E402
import websockets.sync.client as ws_sync  # noqa: E402

import edgelite  # noqa: E402
from tests.support.processes import start_server  # noqa: E402

ROWS = 1000
QUERY = "SELECT v FROM kv WHERE k = ?"


def keys(count: int) -> list[int]:
    return [(i % ROWS) + 1 for i in range(count)]


def measure(run: Callable[[list[int]], None], queries: int, rounds: int) -> tuple[float, float]:
    """(wall µs/query, client CPU µs/query), medians over ``rounds``."""
    run(keys(min(200, queries)))  # warm-up: connections, caches
    walls, cpus = [], []
    for _ in range(rounds):
        batch = keys(queries)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run(batch)
        walls.append((time.perf_counter() - wall0) / queries * 1e6)
        cpus.append((time.process_time() - cpu0) / queries * 1e6)
    return statistics.median(walls), statistics.median(cpus)


def apsw_case(path: Path) -> Callable[[list[int]], None]:
    db = apsw.Connection(str(path))
    cursor = db.cursor()

    def run(batch: list[int]) -> None:
        for k in batch:
            cursor.execute(QUERY, (k,)).fetchall()
    return run


def dbapi_case(connection: edgelite.Connection) -> Callable[[list[int]], None]:
    def run(batch: list[int]) -> None:
        for k in batch:
            connection.execute(QUERY, (k,)).fetchall()
    return run


def aio_case(url: str) -> Callable[[list[int]], None]:
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(edgelite.aio.connect(url))

    async def queries(batch: list[int]) -> None:
        for k in batch:
            cursor = await connection.execute(QUERY, (k,))
            await cursor.fetchall()

    def run(batch: list[int]) -> None:
        loop.run_until_complete(queries(batch))
    return run


def raw_http_case(url: str) -> Callable[[list[int]], None]:
    client = httpx.Client()

    def run(batch: list[int]) -> None:
        for k in batch:
            body = ('{"requests":[{"type":"execute","stmt":{"sql":"%s","args":[{"type":'
                    '"integer","value":"%d"}]}},{"type":"close"}]}' % (QUERY, k))
            response = client.post(url + "/v3/pipeline", content=body,
                                   headers={"content-type": "application/json"})
            json.loads(response.content)["results"][0]["response"]["result"]["rows"]
    return run


def raw_ws_case(url: str) -> Callable[[list[int]], None]:
    socket = ws_sync.connect(url, subprotocols=["hrana3"], compression=None, legacy=True)
    socket.send('{"type":"hello","jwt":null}')
    socket.recv()
    socket.send('{"type":"request","request_id":0,"request":{"type":"open_stream",'
                '"stream_id":0}}')
    socket.recv()

    def run(batch: list[int]) -> None:
        for k in batch:
            socket.send('{"type":"request","request_id":1,"request":{"type":"execute",'
                        '"stream_id":0,"stmt":{"sql":"%s","args":[{"type":"integer",'
                        '"value":"%d"}]}}}' % (QUERY, k))
            json.loads(socket.recv())["response"]["result"]["rows"]
    return run


def libsql_client_case(url: str) -> Callable[[list[int]], None]:
    client = libsql_client.create_client_sync(url)

    def run(batch: list[int]) -> None:
        for k in batch:
            client.execute(QUERY, [k]).rows
    return run


def prepare(server_url: str, directory: Path) -> Path:
    with edgelite.connect(server_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)",
                         [(k, f"value-{k:04d}") for k in range(1, ROWS + 1)])
    conn.close()
    local = directory / "local.db"
    with edgelite.connect(str(local)) as conn:
        conn.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO kv VALUES (?, ?)",
                         [(k, f"value-{k:04d}") for k in range(1, ROWS + 1)])
    conn.close()
    return local


def report(results: dict[str, tuple[float, float]]) -> None:
    reference = results["libsql-client ws"]
    floors = {"http": results["raw httpx"], "ws": results["raw websocket"]}
    print(f"{'case':<22}{'wall µs/q':>11}{'client CPU µs/q':>17}"
          f"{'wall vs libsql-client ws':>27}{'CPU over raw floor':>20}")
    for name, (wall, cpu) in results.items():
        floor = floors.get("ws" if " ws" in name or name.endswith("websocket") else "http")
        remote = name.startswith(("edgelite http", "edgelite aio", "edgelite ws",
                                  "libsql-client"))
        versus = f"{wall / reference[0]:.2f}x" if remote or name.startswith("raw") else "-"
        extra = f"+{cpu - floor[1]:.0f} µs" if remote and floor else "-"
        print(f"{name:<22}{wall:>11.1f}{cpu:>17.1f}{versus:>27}{extra:>20}")
    apsw_wall = results["apsw"][0]
    print(f"\nedgelite local / apsw (wall): {results['edgelite local'][0] / apsw_wall:.1f}x; "
          f"edgelite http / apsw: {results['edgelite http'][0] / apsw_wall:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="edgelite-client-bench-"))
    server = start_server(directory, name="bench")
    try:
        local = prepare(server.url, directory)
        connections = {
            "edgelite local": edgelite.connect(str(local)),
            "edgelite http": edgelite.connect(server.url),
            "edgelite ws": edgelite.connect(server.ws_url),
        }
        cases: dict[str, Callable[[list[int]], None]] = {
            "apsw": apsw_case(local),
            "edgelite local": dbapi_case(connections["edgelite local"]),
            "raw httpx": raw_http_case(server.url),
            "edgelite http": dbapi_case(connections["edgelite http"]),
            "edgelite aio http": aio_case(server.url),
            "raw websocket": raw_ws_case(server.ws_url),
            "edgelite ws": dbapi_case(connections["edgelite ws"]),
            "libsql-client ws": libsql_client_case(server.ws_url),
            "libsql-client http": libsql_client_case(server.url),
        }
        results: dict[str, Any] = {}
        for name, run in cases.items():
            results[name] = measure(run, options.queries, options.rounds)
            print(f"  measured {name}", file=sys.stderr)
        print(f"point query, {options.queries} queries x {options.rounds} rounds, "
              f"median per round (Python {sys.version.split()[0]}, "
              f"SQLite {apsw.sqlite_lib_version()})\n")
        report(results)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
