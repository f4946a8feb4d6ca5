"""Command line: `python -m chaos --seed N [--seed M ...] [--duration SECONDS]`; exits 1 if any invariant fails."""

from __future__ import annotations

import argparse
import sys

from chaos.campaign import DEFAULT_SEEDS, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument(
        "--seed", type=int, action="append", dest="seeds", help=f"a seed to run (repeatable; default {DEFAULT_SEEDS})"
    )
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of workload and faults (default 40)")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds to wait for the system to settle")
    parser.add_argument("--keep", action="store_true", help="keep each run's directory and database afterwards")
    args = parser.parse_args(argv)
    failed = []
    for seed in args.seeds or DEFAULT_SEEDS:
        outcome = run(seed, duration=args.duration, settle_timeout=args.settle, keep=args.keep)
        print("\n".join(outcome.lines()), flush=True)
        if not outcome.passed:
            failed.append(seed)
            print(f"seed {seed}: FAILED; logs kept in {outcome.workdir}; replay with `make chaos SEED={seed}`")
    print(f"\nchaos: {len(args.seeds or DEFAULT_SEEDS) - len(failed)} seed(s) passed, failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
