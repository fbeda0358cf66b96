"""Run every benchmark in turn and print each one's table (``make bench``; not a test).

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...]

Each benchmark prints ratios against baselines measured in its own run (raw APSW, a
constant HTTP endpoint, plain write+fdatasync, ...), so the tables stay comparable on a
busy machine; absolute numbers are not. ``--quick`` shortens every run (a smoke test of
the scripts, not a measurement). The ones that drive HTTP load need ``wrk`` (Debian
package ``wrk``); they are skipped with a note when it is missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# name -> (arguments for a full run, arguments for --quick, needs wrk)
BENCHMARKS: dict[str, tuple[list[str], list[str], bool]] = {
    "raft_throughput": ([], ["--entries", "2000"], False),
    "raftlog_append": ([], ["--syncs", "50"], False),
    "hrana_codec": ([], [], False),
    "peer_transport": ([], ["--messages", "20000"], False),
    "client_overhead": ([], ["--queries", "200", "--rounds", "1"], False),
    "replica": ([], ["--queries", "500", "--rounds", "1", "--writes", "50"], False),
    "server_throughput": ([], ["--duration", "1", "--runs", "1"], True),
    "cluster": ([], ["--quick"], True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke runs")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS),
                        help="run only these benchmarks")
    options = parser.parse_args()
    failed = []
    for name in options.only or list(BENCHMARKS):
        full, quick, needs_wrk = BENCHMARKS[name]
        print(f"\n=== {name} ===", flush=True)
        if needs_wrk and shutil.which("wrk") is None:
            print("skipped: needs wrk (apt install wrk)")
            continue
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(BENCH / f"{name}.py"),
                                 *(quick if options.quick else full)], check=False)
        print(f"--- {name}: exit {result.returncode} after "
              f"{time.monotonic() - started:.0f} s", flush=True)
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
