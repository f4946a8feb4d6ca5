"""Enqueue jobs through one system's module and print how long the sends took, as JSON on stdout.

Run as ``python -m bench.workloads.enqueue MODULE JOBS [--django]``: a process of its own, so that
each system is imported and set up alone, as its application would be.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("module", help="a module with an enqueue(jobs) function")
    parser.add_argument("jobs", type=int)
    parser.add_argument("--django", action="store_true", help="set up Django (config.settings) first")
    args = parser.parse_args(argv)
    if args.django:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        django.setup()
    module = importlib.import_module(args.module)
    started = time.perf_counter()
    module.enqueue(args.jobs)
    print(json.dumps({"jobs": args.jobs, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
