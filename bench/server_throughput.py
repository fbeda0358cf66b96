"""Single-node throughput over /v2/pipeline, with baselines measured in the same run.

    .venv/bin/python bench/server_throughput.py [--duration 5] [--runs 3]

Rows (each at concurrency 1, 8 and 64, closed-loop connections driven by wrk with one
thread, like perf-peers.md):

* ``constant``  — a minimal aiohttp+uvloop endpoint returning a constant JSON body
                  (the ceiling of a Python HTTP server on this machine);
* ``read``      — ``SELECT v FROM kv WHERE id = ?`` over ``/v2/pipeline``
                  (``[execute, close]``, what ``@libsql/client`` sends);
* ``insert``    — ``INSERT INTO kv(v) VALUES (?)``, durable autocommit (group commit);
* ``apsw``      — the same point select and a synchronous=FULL insert straight on APSW
                  in this process (no HTTP), for scale.

It prints requests/s, p50 and p99 per cell (median of ``--runs``) and the ratios the
issue sets as targets: read / constant at c=64 (target >= 0.5) and insert / read at
c=64 (target >= 0.5). Needs ``wrk`` (Debian package ``wrk``). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.processes import free_port, wait_healthy  # noqa: E402

CONCURRENCY = (1, 8, 64)
READ_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local id = (counter % 1000) + 1
  return wrk.format(nil, nil, nil, '{"requests":[{"type":"execute","stmt":{"sql":' ..
    '"SELECT v FROM kv WHERE id = ?","args":[{"type":"integer","value":"' .. id ..
    '"}]}},{"type":"close"}]}')
end
"""
INSERT_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"requests":[{"type":"execute","stmt":{"sql":"INSERT INTO kv(v) VALUES (?)",' ..
  '"args":[{"type":"text","value":"' .. string.rep("v", 100) .. '"}]}},{"type":"close"}]}'
"""
CONSTANT_APP = """
import asyncio, sys, uvloop
from aiohttp import web
BODY = b'{"baton":null,"base_url":null,"results":[]}'
async def ok(request):
    await request.read()
    return web.Response(body=BODY, content_type="application/json")
app = web.Application(); app.router.add_post("/v2/pipeline", ok)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def wrk(url: str, lua: Path, connections: int, duration_s: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency",
                          "-s", str(lua), url], capture_output=True, text=True, check=True)
    text = out.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": rate, "p50_ms": _latency(text, "50%"), "p99_ms": _latency(text, "99%"),
            "non2xx": float(errors.group(1)) if errors else 0.0}


def _latency(text: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", text)
    assert match, text
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def start(args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT)
    wait_healthy_or_post(f"http://127.0.0.1:{port}", process, log)
    return process


def wait_healthy_or_post(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url + "/v2/pipeline", data=b'{"requests":[]}',
                                             method="POST")
            with urllib.request.urlopen(request, timeout=1):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def median_cell(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def apsw_baseline(directory: Path) -> dict[str, float]:
    import apsw

    db = apsw.Connection(str(directory / "apsw.db"))
    db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT)")
    with db:
        db.executemany("INSERT INTO kv(v) VALUES (?)", [("v" * 100,)] * 1000)
    cursor = db.cursor()
    count, start_s = 0, time.perf_counter()
    while time.perf_counter() - start_s < 1.0:
        cursor.execute("SELECT v FROM kv WHERE id = ?", (count % 1000 + 1,)).fetchall()
        count += 1
    reads = count / (time.perf_counter() - start_s)
    count, start_s = 0, time.perf_counter()
    while time.perf_counter() - start_s < 1.0:
        cursor.execute("INSERT INTO kv(v) VALUES (?)", ("v" * 100,))
        count += 1
    inserts = count / (time.perf_counter() - start_s)
    db.close()
    return {"read": reads, "insert": inserts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="edgelite-bench-"))
    (work / "read.lua").write_text(READ_LUA)
    (work / "insert.lua").write_text(INSERT_LUA)
    (work / "empty.lua").write_text('wrk.method = "POST"\nwrk.body = "{}"\n')
    (work / "constant.py").write_text(CONSTANT_APP)
    results: dict[tuple[str, int], dict[str, float]] = {}

    constant_port = free_port()
    constant = start([sys.executable, str(work / "constant.py"), str(constant_port)],
                     constant_port, work / "constant.log")
    try:
        for c in CONCURRENCY:
            results[("constant", c)] = median_cell(
                [wrk(f"http://127.0.0.1:{constant_port}/v2/pipeline", work / "empty.lua", c,
                     options.duration) for _ in range(options.runs)])
    finally:
        constant.send_signal(signal.SIGTERM)
        constant.wait()

    port = free_port()
    with open(work / "server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "edgelite.cli.main", "dev", "--port", str(port),
             "--data-dir", str(work / "data"), "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "EDGELITE_CONCURRENT_REQUESTS_MAX": "4096"})
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, work / "server.log")
        seed = {"requests": [{"type": "execute", "stmt": {"sql": sql}} for sql in (
            "CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT)",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) "
            "INSERT INTO kv(v) SELECT printf('%0100d', i) FROM n")] + [{"type": "close"}]}
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/pipeline", data=json.dumps(seed).encode(),
            method="POST"), timeout=10).read()
        url = f"http://127.0.0.1:{port}/v2/pipeline"
        for name, lua in (("read", "read.lua"), ("insert", "insert.lua")):
            for c in CONCURRENCY:
                results[(name, c)] = median_cell([wrk(url, work / lua, c, options.duration)
                                                  for _ in range(options.runs)])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    apsw_rates = apsw_baseline(work)
    report(results, apsw_rates)
    shutil.rmtree(work, ignore_errors=True)


def report(results: dict[tuple[str, int], dict[str, float]],
           apsw_rates: dict[str, float]) -> None:
    print(f"{'row':<10}{'c':>4}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for (name, c), cell in results.items():
        print(f"{name:<10}{c:>4}{cell['rps']:>12.0f}{cell['p50_ms']:>10.3f}"
              f"{cell['p99_ms']:>10.3f}{cell['non2xx']:>10.0f}")
    print(f"{'apsw read':<14}{apsw_rates['read']:>12.0f} /s (in process, no HTTP)")
    print(f"{'apsw insert':<14}{apsw_rates['insert']:>12.0f} /s (synchronous=FULL, one "
          "transaction each)")
    read64, constant64 = results[("read", 64)]["rps"], results[("constant", 64)]["rps"]
    insert64 = results[("insert", 64)]["rps"]
    print(f"ratio read/constant  c=64: {read64 / constant64:.2f}  (target >= 0.5)")
    print(f"ratio insert/read    c=64: {insert64 / read64:.2f}  (target >= 0.5)")
    print(f"ratio insert/apsw-insert c=64: {insert64 / apsw_rates['insert']:.2f}")


if __name__ == "__main__":
    main()
