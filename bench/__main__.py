"""Command line: `python -m bench` runs every scenario, `python -m bench NAME...` the chosen ones."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench import harness
from bench.harness import BASE_DIR, Options
from bench.scenarios import SCENARIOS


def parse(argv: list[str] | None = None) -> tuple[list[str], Options, bool]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"scenarios to run (default: all: {list(SCENARIOS)})")
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    parser.add_argument("--repeat", type=int, default=repeat, help="runs per system; median kept ($BENCH_REPEAT)")
    jobs = int(os.environ.get("BENCH_JOBS", "0")) or None
    parser.add_argument("--jobs", type=int, default=jobs, help="jobs per run ($BENCH_JOBS; default: the scenario's)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (or concurrency) of every system")
    parser.add_argument("--no-save", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases) afterwards")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    options = Options(
        jobs=args.jobs,
        repeat=max(1, args.repeat),
        threads=args.threads,
        workdir=Path(tempfile.mkdtemp(prefix="bench-")),
        doc=None if args.no_save else BASE_DIR / "docs" / "benchmarks.md",
    )
    return args.names or list(SCENARIOS), options, args.keep


def main(argv: list[str] | None = None) -> int:
    names, options, keep = parse(argv)
    print(f"work directory (logs): {options.workdir}", flush=True)
    try:
        for name in names:
            print(f"\n== {name} ==", flush=True)
            SCENARIOS[name](options)
    except BaseException:
        print(f"\nwork directory kept for its logs: {options.workdir}", file=sys.stderr)
        raise
    if not keep:
        harness.drop_scratch_databases()
        shutil.rmtree(options.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
