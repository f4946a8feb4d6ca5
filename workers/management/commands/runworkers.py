"""``manage.py runworkers``: Dramatiq workers under a supervisor that replaces a dead one and stops them gently."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workers import queues as queues_module
from workers.supervisor import Supervisor


class Command(BaseCommand):
    help = (
        "Run Dramatiq worker processes; a process that dies is replaced without stopping the others, and "
        "SIGTERM or Ctrl-C lets each finish or put back its jobs within the shutdown timeout."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="worker processes (cores)")
        parser.add_argument("--threads", type=int, default=8, help="worker threads per process")
        parser.add_argument("--queues", nargs="*", default=[], help="queues to consume (all when omitted)")
        parser.add_argument(
            "--reserve",
            nargs="*",
            metavar="QUEUE=THREADS",
            default=None,
            help="threads kept for one queue alone, in a worker process of its own (default: JOB_RESERVED_THREADS)",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            default=20.0,
            help="seconds a stopping worker may finish its running jobs before it puts them back",
        )

    def handle(
        self,
        *args,
        processes: int,
        threads: int,
        queues: list[str],
        shutdown_timeout: float,
        reserve: list[str] | None,
        **options,
    ):
        if processes < 1 or threads < 1:
            raise CommandError("--processes and --threads must be at least 1")
        reserved = _reserved(reserve) if reserve is not None else dict(settings.JOB_RESERVED_THREADS)
        if shutdown_timeout <= 0:
            raise CommandError("--shutdown-timeout must be more than 0 seconds")
        for name in [*queues, *reserved]:
            try:
                queues_module.check(name)
            except ValueError as error:
                raise CommandError(str(error)) from None
        supervisor = Supervisor(
            processes=processes, threads=threads, queues=queues, shutdown_timeout=shutdown_timeout, reserved=reserved
        )
        raise SystemExit(supervisor.run())


def _reserved(pairs: list[str]) -> dict[str, int]:
    """``["urgent=2"]`` -> ``{"urgent": 2}``; a pair that is not QUEUE=THREADS (at least 1) is refused."""
    reserved = {}
    for pair in pairs:
        name, _, count = pair.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise CommandError(f"--reserve {pair!r}: expected QUEUE=THREADS, such as urgent=2")
        reserved[name] = int(count)
    return reserved
