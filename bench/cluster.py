"""Single node vs 3-node cluster: inserts, reads at each consistency level, failover time.

    .venv/bin/python bench/cluster.py [--duration 5] [--runs 3] [--failovers 10] [--quick]

One run measures, on 127.0.0.1 with every setting at its default (100 ms ticks, election
timeout 10 ticks randomised up to 20):

1. ``insert``: durable autocommit single-row ``INSERT INTO ins(v) VALUES (?)`` (100-byte
   text) over ``/v2/pipeline`` (``[execute, close]``) to a single node (``edgelite dev``)
   and to the leader of a 3-node cluster, at c = 1, 8, 64. A constant aiohttp endpoint is
   measured alongside as the ceiling of a Python HTTP server at that moment.
2. ``read``: ``SELECT v FROM kv WHERE id = ?`` on 1,000 rows, on the leader and on a
   follower, at ``x-edgelite-consistency`` strong, session (with the bookmark of the
   seeding write) and eventual; c = 1, 8, 64 (c = 8 only with ``--quick``).
3. ``failover``: kill -9 the leader, then clients (one per survivor, 0.5 s timeouts, new
   write per attempt) write until the first acknowledged write; the dead node is
   restarted and caught up before the next round.

Progress goes to stderr, the table to stdout. HTTP cells are driven by wrk with one
thread (like /work/shared/perf-peers.md); cells of the same concurrency are interleaved
(constant, single, cluster, ...) and repeated ``--runs`` times, and each printed value
is the median of the runs. ``ok/s`` counts only HTTP 200 answers without a Hrana error.
Ends with the ratios the replicated-cluster issue sets as targets. Needs ``wrk``
(Debian package ``wrk``). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cluster import Cluster, Member  # noqa: E402
from tests.support.processes import free_port, wait_healthy  # noqa: E402

# Defaults written out so that the harness's faster test ticks do not apply here.
EDGELITE_ENV = {"EDGELITE_TICK_INTERVAL_MS": "100", "EDGELITE_ELECTION_TIMEOUT_TICKS": "10"}
LEVELS = ("strong", "session", "eventual")
ATTEMPT_TIMEOUT_S = 0.5
FAILOVER_GIVE_UP_S = 30.0

ERRCOUNT_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
errors = 0
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"type":"error"', 1, true) then errors = errors + 1 end
end
function done(summary, latency, requests)
  local e = 0
  for _, t in ipairs(threads) do e = e + t:get("errors") end
  io.write("body_errors: " .. e .. "\\n")
end
"""
READ_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-edgelite-consistency"] = "%(level)s"
%(bookmark)s
counter = 0
request = function()
  counter = counter + 1
  local id = (counter %% 1000) + 1
  return wrk.format(nil, nil, nil, '{"requests":[{"type":"execute","stmt":{"sql":' ..
    '"SELECT v FROM kv WHERE id = ?","args":[{"type":"integer","value":"' .. id ..
    '"}]}},{"type":"close"}]}')
end
"""
INSERT_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"requests":[{"type":"execute","stmt":{"sql":"INSERT INTO ins(v) VALUES (?)",' ..
  '"args":[{"type":"text","value":"' .. string.rep("v", 100) .. '"}]}},{"type":"close"}]}'
"""
CONSTANT_LUA = 'wrk.method = "POST"\nwrk.body = "{}"\n'
CONSTANT_APP = """
import sys, uvloop
from aiohttp import web
BODY = b'{"baton":null,"base_url":null,"results":[]}'
async def ok(request):
    await request.read()
    return web.Response(body=BODY, content_type="application/json")
app = web.Application(); app.router.add_post("/v2/pipeline", ok)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
SEED_SQL = (
    "CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT)",
    "CREATE TABLE ins(id INTEGER PRIMARY KEY, v TEXT)",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) "
    "INSERT INTO kv(v) SELECT printf('%0100d', i) FROM n",
)

Cell = dict[str, float]


# --- wrk -------------------------------------------------------------------------------------

def wrk(url: str, lua: Path, connections: int, duration_s: float) -> Cell:
    """One wrk run (one thread, keep-alive): ok/s, p50/p99 in ms, error and timeout counts."""
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--latency",
                           "--timeout", "10s", "-s", str(lua), url],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed on {url} (c={connections}): {done.stderr or done.stdout}")
    out = done.stdout
    rate = _number(r"Requests/sec:\s+([\d.]+)", out)
    requests = _number(r"(\d+) requests in", out)
    errors = _number(r"body_errors: (\d+)", out)
    timeouts = _number(r"Socket errors:.*timeout (\d+)", out)
    ok_share = (requests - errors) / requests if requests else 0.0
    return {"ok_rps": rate * ok_share, "p50_ms": _latency(out, "50%"),
            "p99_ms": _latency(out, "99%"), "errors": errors, "timeouts": timeouts}


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


def _latency(text: str, label: str) -> float:
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        return math.nan
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def summarise(samples: list[Cell]) -> Cell:
    """Median of every field over the runs, plus the spread of ok/s ((max - min) / median)."""
    cell = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    cell["elections"] = sum(s.get("elections", 0.0) for s in samples)
    rates = [s["ok_rps"] for s in samples]
    cell["spread"] = (max(rates) - min(rates)) / cell["ok_rps"] if cell["ok_rps"] else math.nan
    cell["runs"] = len(samples)
    return cell


# --- processes -------------------------------------------------------------------------------

class Processes:
    """Everything this script starts, so that one ``close()`` ends all of it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.single: subprocess.Popen[bytes] | None = None
        self.constant: subprocess.Popen[bytes] | None = None
        self.cluster: Cluster | None = None

    def start_constant(self) -> str:
        port = free_port()
        script = self.work / "constant.py"
        script.write_text(CONSTANT_APP)
        with open(self.work / "constant.log", "wb") as log:
            self.constant = subprocess.Popen([sys.executable, str(script), str(port)],
                                             stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/v2/pipeline"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=b"{}"), timeout=1)
                return url
            except OSError:
                if self.constant.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.work / "constant.log").read_text()) from None
                time.sleep(0.05)

    def start_single(self) -> str:
        port = free_port()
        log_path = self.work / "single.log"
        with open(log_path, "wb") as log:
            self.single = subprocess.Popen(
                [sys.executable, "-m", "edgelite.cli.main", "dev", "--port", str(port),
                 "--data-dir", str(self.work / "single"), "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **EDGELITE_ENV})
        wait_healthy(f"http://127.0.0.1:{port}", self.single, log_path)
        return f"http://127.0.0.1:{port}"

    def start_cluster(self) -> Cluster:
        # wait=False: hold the handle before waiting, so an interrupt still stops the members
        self.cluster = Cluster.start(self.work / "cluster", size=3, env=EDGELITE_ENV,
                                     extra_args=("--log-level", "warning"), wait=False)
        self.cluster.wait_for_leader()
        return self.cluster

    def close(self) -> None:
        # A second Ctrl-C must not cut the clean-up short and leave servers running.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(
            signal.SIGTERM, signal.SIG_IGN)
        try:
            self._close()
        finally:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])

    def _close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
        for process in (self.single, self.constant):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def seed(url: str) -> int:
    """Create the tables and 1,000 rows; returns the replication index of that write."""
    body = {"requests": [{"type": "execute", "stmt": {"sql": sql}} for sql in SEED_SQL]
            + [{"type": "close"}]}
    response = httpx.post(url + "/v2/pipeline", json=body, timeout=30)
    response.raise_for_status()
    results = response.json()["results"]
    failed = [r for r in results if r["type"] != "ok"]
    if failed:
        raise RuntimeError(f"seeding failed: {failed}")
    return int(response.headers.get("x-edgelite-replication-index", "0"))


def caught_up(cluster: Cluster, timeout_s: float = 60.0) -> dict[str, Any]:
    """Wait until every member is reachable and has applied the leader's commit index."""
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        status = cluster.status(cluster.leader().node_id)
        if status and all(m["reachable"] and m["lag"] == 0 for m in status["members"]):
            return status
        time.sleep(0.1)
    raise TimeoutError(f"members did not catch up: {status}")


# --- phases ----------------------------------------------------------------------------------

Target = tuple[str, Path, "Cluster | None"]  # URL, wrk script, cluster whose term to watch


def timed_wrk(target: Target, c: int, duration_s: float) -> Cell:
    """One wrk run; ``elections`` counts the Raft terms that began while it ran."""
    url, lua, cluster = target
    before = cluster_term(cluster)
    cell = wrk(url, lua, c, duration_s)
    cell["elections"] = float(cluster_term(cluster) - before)
    return cell


def cluster_term(cluster: Cluster | None) -> int:
    if cluster is None:
        return 0
    for node_id in cluster.members:
        status = cluster.status(node_id)
        if status is not None:
            return int(status["term"])
    return 0


def measure_inserts(targets: dict[str, Target], concurrencies: tuple[int, ...],
                    options: argparse.Namespace) -> dict[tuple[str, int], list[Cell]]:
    """Interleave the targets within each run so slow drift in machine load hits all alike."""
    samples: dict[tuple[str, int], list[Cell]] = {}
    for c in concurrencies:
        for run in range(options.runs):
            for name, target in targets.items():
                cell = timed_wrk(target, c, options.duration)
                samples.setdefault((name, c), []).append(cell)
                progress(f"insert {name:<9} c={c:<3} run {run + 1}: {cell['ok_rps']:8.0f} ok/s"
                         f" p50 {cell['p50_ms']:.2f} ms")
    return samples


def measure_reads(cluster: Cluster, leader: Member, follower: Member, bookmark: int,
                  concurrencies: tuple[int, ...], options: argparse.Namespace,
                  work: Path) -> dict[tuple[str, str, int], list[Cell]]:
    scripts = {}
    for level in LEVELS:
        mark = (f'wrk.headers["x-edgelite-bookmark"] = "{bookmark}"' if level == "session"
                else "")
        scripts[level] = work / f"read_{level}.lua"
        scripts[level].write_text(READ_LUA % {"level": level, "bookmark": mark} + ERRCOUNT_LUA)
    samples: dict[tuple[str, str, int], list[Cell]] = {}
    for c in concurrencies:
        for run in range(options.runs):
            status = caught_up(cluster)
            if status["leader_id"] != leader.node_id:
                progress(f"WARNING: {status['leader_id']} leads now, not {leader.node_id}")
            for role, member in (("leader", leader), ("follower", follower)):
                for level in LEVELS:
                    target = (member.url + "/v2/pipeline", scripts[level], cluster)
                    cell = timed_wrk(target, c, options.duration)
                    samples.setdefault((role, level, c), []).append(cell)
                    progress(f"read {role:<8} {level:<8} c={c:<3} run {run + 1}: "
                             f"{cell['ok_rps']:8.0f} ok/s p50 {cell['p50_ms']:.2f} ms")
    return samples


async def first_ack(urls: list[str], start: float) -> tuple[float, str, int]:
    """Seconds from ``start`` (monotonic) until one of ``urls`` acknowledges a write, which
    URL did, and how many attempts were made (inf and "" if none within the give-up time)."""
    attempts = 0
    winner: asyncio.Future[tuple[float, str]] = asyncio.get_running_loop().create_future()
    body = {"requests": [{"type": "execute", "stmt": {
        "sql": "INSERT INTO ins(v) VALUES ('failover')"}}, {"type": "close"}]}

    async def client(url: str, http: httpx.AsyncClient) -> None:
        nonlocal attempts
        while not winner.done() and time.monotonic() - start < FAILOVER_GIVE_UP_S:
            attempts += 1
            try:
                response = await http.post(url + "/v2/pipeline", json=body,
                                            timeout=ATTEMPT_TIMEOUT_S)
                if response.status_code == 200 and response.json()["results"][0]["type"] == "ok":
                    if not winner.done():
                        winner.set_result((time.monotonic() - start, url))
                    return
            except (httpx.HTTPError, ValueError, KeyError, IndexError):
                pass
            await asyncio.sleep(0.02)

    async with httpx.AsyncClient() as http:
        tasks = [asyncio.create_task(client(url, http)) for url in urls]
        watched: list[asyncio.Future[Any]] = [winner, *tasks]
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED,
                           timeout=FAILOVER_GIVE_UP_S + 1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if not winner.done():
        return math.inf, "", attempts
    elapsed, url = winner.result()
    return elapsed, url, attempts


def measure_failover(cluster: Cluster, rounds: int) -> list[dict[str, Any]]:
    results = []
    for round_number in range(rounds):
        caught_up(cluster)
        time.sleep(0.5)  # let heartbeats settle after the restart before the next kill
        leader = cluster.wait_for_leader()
        survivors = [m for m in cluster.members.values() if m is not leader and m.alive]
        assert leader.process is not None
        start = time.monotonic()
        leader.process.send_signal(signal.SIGKILL)
        elapsed, url, attempts = asyncio.run(first_ack([m.url for m in survivors], start))
        leader.process.wait(timeout=10)
        acked_by = next((m.node_id for m in survivors if m.url == url), "none")
        new_leader = cluster.wait_for_leader()
        results.append({"seconds": elapsed, "killed": leader.node_id, "acked_by": acked_by,
                        "new_leader": new_leader.node_id, "attempts": attempts})
        progress(f"failover {round_number + 1}: killed {leader.node_id}, first ack after "
                 f"{elapsed:.3f} s via {acked_by} (new leader {new_leader.node_id}, "
                 f"{attempts} attempts)")
        cluster.restart(leader.node_id)
    caught_up(cluster)
    return results


def progress(line: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


# --- report ----------------------------------------------------------------------------------

def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _row(label: str, c: int, cell: Cell) -> str:
    return (f"{label:<20}{c:>4}{cell['ok_rps']:>9.0f}{cell['p50_ms']:>9.2f}"
            f"{cell['p99_ms']:>9.2f}{cell['errors']:>7.0f}{cell['timeouts']:>5.0f}"
            f"{cell['spread'] * 100:>7.0f}%{cell['elections']:>6.0f}")


Samples = dict[Any, list[Cell]]


def report(inserts: Samples, reads: Samples, failovers: list[dict[str, Any]],
           options: argparse.Namespace) -> dict[str, Any]:
    header = (f"{'':<20}{'c':>4}{'ok/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}"
              f"{'t/o':>5}{'spread':>8}{'elect':>6}")
    print(f"\nmedian of {options.runs} run(s) of {options.duration:g} s each, wrk -t1; "
          "spread = (max - min) / median of ok/s; elect = Raft terms begun during the runs")
    print("\n1. durable autocommit 1-row inserts, /v2/pipeline to the leader")
    print(header)
    for (name, c), cells in inserts.items():
        print(_row(name, c, summarise(cells)))
    print("\n2. point reads by rowid (1,000 rows), x-edgelite-consistency per row")
    print(header)
    for (role, level, c), cells in reads.items():
        print(_row(f"{role} {level}", c, summarise(cells)))
    seconds = [f["seconds"] for f in failovers]
    print(f"\n3. failover: kill -9 leader -> first acknowledged write via a survivor "
          f"({len(seconds)} rounds; tick {EDGELITE_ENV['EDGELITE_TICK_INTERVAL_MS']} ms, "
          f"election timeout {EDGELITE_ENV['EDGELITE_ELECTION_TIMEOUT_TICKS']} ticks "
          f"randomised up to twice, client timeout {ATTEMPT_TIMEOUT_S} s)")
    print("   rounds (s): " + ", ".join(f"{s:.2f}" for s in seconds))
    print(f"   median {statistics.median(seconds):.2f} s   p90 {nearest_rank(seconds, 0.9):.2f} s"
          f"   min {min(seconds):.2f} s   max {max(seconds):.2f} s")
    return ratios(inserts, reads, seconds)


def _paired(numerators: list[Cell], denominators: list[Cell], key: str) -> float:
    """Median over runs of the ratio within a run (the two cells ran back to back)."""
    return statistics.median(n[key] / d[key] for n, d in zip(numerators, denominators,
                                                             strict=True))


def ratios(inserts: Samples, reads: Samples, seconds: list[float]) -> dict[str, Any]:
    single, cluster3 = inserts[("single", 64)], inserts[("cluster3", 64)]
    c = 8 if ("follower", "strong", 8) in reads else min(k[2] for k in reads)
    strong, eventual = reads[("follower", "strong", c)], reads[("follower", "eventual", c)]
    out = {
        "insert_c64_cluster_over_single": (
            summarise(cluster3)["ok_rps"] / summarise(single)["ok_rps"],
            _paired(cluster3, single, "ok_rps"), 0.5, ">="),
        f"follower_c{c}_strong_over_eventual_p50": (
            summarise(strong)["p50_ms"] / summarise(eventual)["p50_ms"],
            _paired(strong, eventual, "p50_ms"), 2.0, "<="),
        f"follower_c{c}_eventual_over_strong_ok_rps": (
            summarise(eventual)["ok_rps"] / summarise(strong)["ok_rps"],
            _paired(eventual, strong, "ok_rps"), 2.0, "<="),
    }
    print("\n4. targets (ratio of the medians; median of the per-run ratios)")
    for name, (of_medians, paired, bound, sense) in out.items():
        met = of_medians >= bound if sense == ">=" else of_medians <= bound
        print(f"   {name:<44}{of_medians:6.2f}{paired:7.2f}   target {sense} {bound:<4g}  "
              f"{'met' if met else 'MISSED'}")
    median_s = statistics.median(seconds)
    print(f"   {'failover median (s)':<44}{median_s:6.2f}{'':7}   target < 3       "
          f"{'met' if median_s < 3 else 'MISSED'}   (p90 {nearest_rank(seconds, 0.9):.2f} s)")
    return {**{k: {"ratio_of_medians": v[0], "median_of_run_ratios": v[1]}
               for k, v in out.items()},
            "failover_median_s": median_s, "failover_p90_s": nearest_rank(seconds, 0.9)}


# --- main ------------------------------------------------------------------------------------

def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 5; "
                        "2 with --quick)")
    parser.add_argument("--runs", type=int, help="wrk runs per cell (default 3; 1 with --quick)")
    parser.add_argument("--failovers", type=int, help="failover rounds (default 10; 3 with "
                        "--quick)")
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    parser.add_argument("--keep", action="store_true", help="keep the data and logs")
    options = parser.parse_args()
    quick = options.quick
    options.duration = options.duration or (2 if quick else 5)
    options.runs = options.runs or (1 if quick else 3)
    options.failovers = options.failovers or (3 if quick else 10)
    options.read_concurrency = (8,) if quick else (1, 8, 64)
    return options


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    options = parse_options()
    if shutil.which("wrk") is None:
        sys.exit("bench/cluster.py needs wrk on PATH (Debian/Ubuntu: apt-get install wrk)")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    work = Path(tempfile.mkdtemp(prefix="edgelite-bench-cluster-"))
    try:
        run(options, work)
    except KeyboardInterrupt:
        sys.exit("interrupted; every process this script started has been stopped")
    finally:
        if options.keep:
            print(f"data and logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(options: argparse.Namespace, work: Path) -> None:
    processes = Processes(work)
    started = time.monotonic()
    load_before = os.getloadavg()
    try:
        for name, text in (("insert", INSERT_LUA), ("constant", CONSTANT_LUA)):
            (work / f"{name}.lua").write_text(text + ERRCOUNT_LUA)
        constant_url = processes.start_constant()
        single_url = processes.start_single()
        cluster = processes.start_cluster()
        leader = cluster.wait_for_leader()
        follower = next(m for m in cluster.members.values() if m is not leader)
        seed(single_url)
        bookmark = seed(leader.url)
        term = cluster.status(leader.node_id)["term"]  # type: ignore[index]
        progress(f"cluster up: leader {leader.node_id}, follower {follower.node_id}, "
                 f"term {term}, bookmark {bookmark}; work dir {work}")
        inserts = measure_inserts(
            {"constant": (constant_url, work / "constant.lua", None),
             "single": (single_url + "/v2/pipeline", work / "insert.lua", None),
             "cluster3": (leader.url + "/v2/pipeline", work / "insert.lua", cluster)},
            (1, 8, 64), options)
        reads = measure_reads(cluster, leader, follower, bookmark, options.read_concurrency,
                              options, work)
        status = caught_up(cluster)
        if status["leader_id"] != leader.node_id or status["term"] != term:
            progress(f"WARNING: elections during the load phases (now {status['leader_id']} "
                     f"leads in term {status['term']}; was {leader.node_id} in {term}); "
                     "see the elect column")
        failovers = measure_failover(cluster, options.failovers)
    finally:
        processes.close()
    summary = report(inserts, reads, failovers, options)
    load_after = os.getloadavg()
    print(f"\nload average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"wall time {time.monotonic() - started:.0f} s")
    if options.json:
        options.json.write_text(json.dumps({
            "options": {k: v for k, v in vars(options).items() if k != "json"},
            "inserts": {f"{n} c={c}": cell for (n, c), cell in inserts.items()},
            "reads": {f"{r} {lv} c={c}": cell for (r, lv, c), cell in reads.items()},
            "failovers": failovers, "ratios": summary,
            "load_before": load_before, "load_after": load_after}, indent=1, default=str))


if __name__ == "__main__":
    main()
