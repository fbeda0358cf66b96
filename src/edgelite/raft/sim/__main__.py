"""Command line: ``python -m edgelite.raft.sim --seeds N --start-seed S``.

Exit status 0 when every seed passed, 1 when any failed. A failing seed prints the
tail of its transcript (the whole one with ``--verbose``) and the exact command that
replays it; the replay is identical because everything derives from the seed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgelite.raft.sim import SimOptions, SimResult, run_seed, voters_for

_TAIL_LINES = 200
_FAILURES_SHOWN = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edgelite.raft.sim",
        description="Deterministic Raft cluster simulation under seeded faults.",
    )
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start-seed", type=int, default=1, help="first seed")
    parser.add_argument(
        "--nodes", default="mixed", choices=["3", "5", "mixed"],
        help="voters per cluster; mixed alternates 3 (odd seeds) and 5 (even seeds)",
    )
    parser.add_argument("--steps", type=int, default=400, help="faulty rounds per seed")
    parser.add_argument(
        "--verbose", action="store_true", help="print every seed's full transcript"
    )
    return parser


def rerun_command(result: SimResult, steps: int) -> str:
    return (
        f"python -m edgelite.raft.sim --seeds 1 --start-seed {result.seed} "
        f"--nodes {result.voters} --steps {steps} --verbose"
    )


def report_failure(result: SimResult, steps: int, verbose: bool) -> None:
    if not result.transcript:
        # Quiet runs keep no transcript; the replay with one is identical.
        result = run_seed(
            SimOptions(result.seed, result.voters, steps, verbose=True)
        )
    lines = result.transcript if verbose else result.transcript[-_TAIL_LINES:]
    if len(lines) < len(result.transcript):
        print(f"... ({len(result.transcript) - len(lines)} earlier lines omitted)")
    print("\n".join(lines))
    print(f"seed {result.seed} FAILED: {result.failure}")
    print(f"rerun: {rerun_command(result, steps)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    failures: list[SimResult] = []
    totals: dict[str, int] = {}
    sizes = {3: 0, 5: 0}
    for seed in range(args.start_seed, args.start_seed + args.seeds):
        voters = voters_for(seed, args.nodes)
        sizes[voters] += 1
        result = run_seed(SimOptions(seed, voters, args.steps, verbose=args.verbose))
        for name, value in result.stats.items():
            merge = max if name.endswith("_max") else sum
            totals[name] = merge((totals.get(name, 0), value))
        if args.verbose and result.ok:
            print("\n".join(result.transcript))
        if not result.ok:
            failures.append(result)
            if len(failures) <= _FAILURES_SHOWN:
                report_failure(result, args.steps, args.verbose)
            else:
                print(f"seed {seed} FAILED: {result.failure.splitlines()[0]}")
                print(f"rerun: {rerun_command(result, args.steps)}")
        sys.stdout.flush()
    summary = " ".join(f"{name}={value}" for name, value in totals.items())
    print(
        f"{args.seeds} seeds from {args.start_seed} ({sizes[3]} with 3 voters, "
        f"{sizes[5]} with 5), {len(failures)} failed; totals: {summary}"
    )
    if failures:
        print("failed seeds: " + " ".join(str(r.seed) for r in failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
