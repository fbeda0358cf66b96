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
* ``edgelite aio ws``    — ``edgelite.aio.connect("ws://...")``;
* ``libsql-client ws``   — PyPI ``libsql-client`` ``create_client_sync("ws://...")``;
* ``libsql-client http`` — the same with an http URL (it then uses ``/v1/execute``).

Columns: wall-clock µs per query (median of ``--rounds``; rounds interleave the cases)
and client CPU µs per query (``time.process_time`` of this process, which excludes the
server process: the cost the client itself adds). Ratios compare each remote case with
``libsql-client ws``; "CPU over raw floor" is a client's CPU minus the hand-built request
of its transport (for ``libsql-client http`` the floor is a different protocol, v1).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import apsw  # noqa: E402
import httpx  # noqa: E402
import libsql_client  # noqa: E402
import websockets.sync.client as ws_sync  # noqa: E402
from tests.support.processes import start_server  # noqa: E402

import edgelite  # noqa: E402

ROWS = 1000
QUERY = "SELECT v FROM kv WHERE k = ?"


def keys(count: int) -> list[int]:
    return [(i % ROWS) + 1 for i in range(count)]


def measure(cases: dict[str, Callable[[list[int]], None]], queries: int,
            rounds: int) -> dict[str, tuple[float, float]]:
    """(wall µs/query, client CPU µs/query) per case, medians over ``rounds``.

    Rounds interleave the cases (every case once per round), so a slow spell of the
    machine hits all of them rather than one.
    """
    for run in cases.values():
        run(keys(min(200, queries)))  # warm-up: connections, caches
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    batch = keys(queries)
    for round_number in range(rounds):
        for name, run in cases.items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            run(batch)
            walls[name].append((time.perf_counter() - wall0) / queries * 1e6)
            cpus[name].append((time.process_time() - cpu0) / queries * 1e6)
        print(f"  round {round_number + 1}/{rounds} done", file=sys.stderr)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name]))
            for name in cases}


def apsw_case(path: Path, closers: list[Callable[[], None]]) -> Callable[[list[int]], None]:
    db = apsw.Connection(str(path))
    closers.append(db.close)
    cursor = db.cursor()

    def run(batch: list[int]) -> None:
        for k in batch:
            cursor.execute(QUERY, (k,)).fetchall()
    return run


def dbapi_case(connection: edgelite.Connection,
               closers: list[Callable[[], None]]) -> Callable[[list[int]], None]:
    closers.append(connection.close)

    def run(batch: list[int]) -> None:
        for k in batch:
            connection.execute(QUERY, (k,)).fetchall()
    return run


def aio_case(url: str, closers: list[Callable[[], None]]) -> Callable[[list[int]], None]:
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(edgelite.aio.connect(url))

    def close() -> None:
        loop.run_until_complete(connection.close())
        loop.close()
    closers.append(close)

    async def queries(batch: list[int]) -> None:
        for k in batch:
            cursor = await connection.execute(QUERY, (k,))
            await cursor.fetchall()

    def run(batch: list[int]) -> None:
        loop.run_until_complete(queries(batch))
    return run


def raw_http_case(url: str, closers: list[Callable[[], None]]) -> Callable[[list[int]], None]:
    client = httpx.Client()
    closers.append(client.close)

    def run(batch: list[int]) -> None:
        for k in batch:
            body = (f'{{"requests":[{{"type":"execute","stmt":{{"sql":"{QUERY}","args":'
                    f'[{{"type":"integer","value":"{k}"}}]}}}},{{"type":"close"}}]}}')
            response = client.post(url + "/v3/pipeline", content=body,
                                   headers={"content-type": "application/json"})
            json.loads(response.content)["results"][0]["response"]["result"]["rows"]
    return run


def raw_ws_case(url: str, closers: list[Callable[[], None]]) -> Callable[[list[int]], None]:
    socket = ws_sync.connect(url, subprotocols=["hrana3"], compression=None, legacy=True)
    closers.append(socket.close)
    socket.send('{"type":"hello","jwt":null}')
    socket.recv()
    socket.send('{"type":"request","request_id":0,"request":{"type":"open_stream",'
                '"stream_id":0}}')
    socket.recv()

    def run(batch: list[int]) -> None:
        for k in batch:
            socket.send(f'{{"type":"request","request_id":1,"request":{{"type":"execute",'
                        f'"stream_id":0,"stmt":{{"sql":"{QUERY}","args":[{{"type":'
                        f'"integer","value":"{k}"}}]}}}}}}')
            json.loads(socket.recv())["response"]["result"]["rows"]
    return run


def libsql_client_case(url: str,
                       closers: list[Callable[[], None]]) -> Callable[[list[int]], None]:
    client = libsql_client.create_client_sync(url)
    closers.append(client.close)

    def run(batch: list[int]) -> None:
        for k in batch:
            rows = client.execute(QUERY, [k]).rows
            assert len(rows) == 1
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
    reference_wall, reference_cpu = results["libsql-client ws"]
    floors = {"http": results["raw httpx"][1], "ws": results["raw websocket"][1]}
    print(f"{'case':<20}{'wall µs/q':>10}{'CPU µs/q':>10}{'wall ratio':>12}{'CPU ratio':>11}"
          f"{'CPU over raw floor':>20}")
    print(f"{'':<20}{'':>10}{'':>10}{'(vs libsql-client ws)':>23}")
    for name, (wall, cpu) in results.items():
        remote = name not in ("apsw", "edgelite local")
        client = remote and not name.startswith("raw")
        floor = floors["ws" if name.endswith(" ws") else "http"]
        wall_ratio = f"{wall / reference_wall:.2f}x" if remote else "-"
        cpu_ratio = f"{cpu / reference_cpu:.2f}x" if remote else "-"
        over = f"{cpu - floor:+.0f} µs" if client else "-"
        print(f"{name:<20}{wall:>10.1f}{cpu:>10.1f}{wall_ratio:>12}{cpu_ratio:>11}{over:>20}")
    apsw_wall, apsw_cpu = results["apsw"]
    local_wall, local_cpu = results["edgelite local"]
    print(f"\nedgelite local / apsw: {local_wall / apsw_wall:.1f}x wall, "
          f"{local_cpu / apsw_cpu:.1f}x CPU; edgelite http / apsw: "
          f"{results['edgelite http'][0] / apsw_wall:.0f}x wall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="edgelite-client-bench-"))
    server = start_server(directory, name="bench")
    closers: list[Callable[[], None]] = []
    try:
        local = prepare(server.url, directory)
        cases: dict[str, Callable[[list[int]], None]] = {
            "apsw": apsw_case(local, closers),
            "edgelite local": dbapi_case(edgelite.connect(str(local)), closers),
            "raw httpx": raw_http_case(server.url, closers),
            "edgelite http": dbapi_case(edgelite.connect(server.url), closers),
            "edgelite aio http": aio_case(server.url, closers),
            "raw websocket": raw_ws_case(server.ws_url, closers),
            "edgelite ws": dbapi_case(edgelite.connect(server.ws_url), closers),
            "edgelite aio ws": aio_case(server.ws_url, closers),
            "libsql-client ws": libsql_client_case(server.ws_url, closers),
            "libsql-client http": libsql_client_case(server.url, closers),
        }
        results = measure(cases, options.queries, options.rounds)
        print(f"point query, {options.queries} queries x {options.rounds} rounds, "
              f"median per round (Python {sys.version.split()[0]}, "
              f"SQLite {apsw.sqlite_lib_version()})\n")
        report(results)
    finally:
        for close in reversed(closers):
            close()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
