"""Wait (bounded) for the system to settle after the faults, then run every invariant; the verdicts as JSON.

``python -m chaos.verify settle WORKDIR TIMEOUT``, then ``python -m chaos.verify check WORKDIR``,
inside the project's settings. Settled means nothing is on its way any more: every order,
payment, mail, import and batch has ended, the outbox and the broker are empty, and every probe
and poison job has ended one way or the other. A system that does not get there within TIMEOUT
seconds is itself a failure (something is stuck or looping), and the invariants are checked as
it then stands.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path


def waiting_for(journal, store) -> list[str]:
    """What has not ended yet, one phrase each; empty once the system has settled."""
    from chaos.evidence import redis_leftovers
    from chaos.invariants.domain import TERMINAL
    from mail.models import Mail
    from orders.models import Import, Order, Payment, PriceBatch, StockAdjustment
    from workers.models import Batch, DeadLetter, OutboxMessage

    counts = {
        "orders not ended": Order.objects.filter(pk__in=journal.expected["orders"])
        .exclude(status__in=TERMINAL)
        .count(),
        "payments pending": Payment.objects.filter(status="pending").count(),
        "mails pending": Mail.objects.filter(status="pending").count(),
        "stock adjustments queued": StockAdjustment.objects.filter(status="queued").count(),
        "imports not ended": Import.objects.filter(status__in=["pending", "running"]).count(),
        "price batches not started": PriceBatch.objects.filter(job_batch=None).count(),
        "batches running": Batch.objects.filter(status=Batch.Status.RUNNING).count(),
        "outbox rows": OutboxMessage.objects.count(),
    }
    counts.update({f"broker {name}": count for name, count in redis_leftovers(store).items()})
    dead = set(DeadLetter.objects.values_list("message_id", flat=True))
    counts["poison jobs running"] = sum(1 for step in journal.of("poison") if step["message_id"] not in dead)
    sent, _ = journal.probe_keys()
    dead_probes = {d["message"]["args"][0] for d in DeadLetter.objects.filter(actor_name="noop").values("message")}
    counts["probes not run"] = sum(1 for key in sent if not store.llen(key) and key not in dead_probes)
    return [f"{name} {count}" for name, count in counts.items() if count]


#: Seconds with nothing left to run (broker and outbox empty) after which what is still waiting never ends:
#: longer than the minute between two reconciliations of running batches by housekeeping.
STUCK_AFTER = 75


def settle(journal, store, *, timeout: float) -> tuple[bool, float, list[str]]:
    """Poll until nothing is on its way twice in a row, or ``timeout`` seconds; (settled, seconds, still waiting).

    Gives up early when something still waits but the broker and the outbox have been empty for
    ``STUCK_AFTER`` seconds: no job is left to run that could end it.
    """
    from django.db import Error, connections

    started = time.monotonic()
    waiting, calm, idle = ["not looked yet"], 0, 0
    while time.monotonic() - started < timeout:
        try:
            waiting = waiting_for(journal, store)
        except Error as error:  # a connection from before the faults may be a dead one
            connections.close_all()
            waiting = [f"database: {type(error).__name__}"]
        calm = calm + 1 if not waiting else 0
        if calm >= 2:
            return True, time.monotonic() - started, []
        idle = idle + 1 if not any(phrase.startswith(("broker", "outbox", "database")) for phrase in waiting) else 0
        if idle >= STUCK_AFTER:
            return False, time.monotonic() - started, [*waiting, "with nothing left to run"]
        time.sleep(1.0)
    return False, time.monotonic() - started, waiting


def check(workdir: Path) -> list[dict]:
    """Every invariant, as the system stands now."""
    import redis
    from django.conf import settings

    from chaos.evidence import JobLog, Journal, mailbox_subjects, redis_leftovers
    from chaos.invariants import domain, platform

    journal = Journal.read(workdir)
    store = redis.Redis.from_url(settings.REDIS_URL)
    log = JobLog.read(workdir / "workers.log")
    subjects = mailbox_subjects(workdir / "mail")
    checks = [
        (domain.orders_terminal, journal),
        (domain.payments_charged_once, journal),
        (domain.confirmations_sent_once, journal, subjects),
        (domain.stock_matches_audits, journal),
        (domain.import_counts_exact, journal, log),
        (domain.price_batch_exact, journal, log),
        (platform.callbacks_once, journal, log),
        (domain.backfill_exact, journal),
        (platform.crash_loops_dead_lettered, journal, log),
        (platform.only_crash_loops_crashed, journal, log),
        (platform.dead_letters_have_reasons, journal),
        (platform.probes_took_effect, journal, store),
        (platform.nothing_left, journal, redis_leftovers(store)),
    ]
    return [asdict(_guarded(check, *args)) for check, *args in checks]


def _guarded(check, *args):
    """The check's verdict, or a failure naming what it raised: one check that cannot run hides no other."""
    from django.db import connections

    from chaos.invariants import Check

    try:
        return check(*args)
    except Exception as error:
        connections.close_all()
        return Check(check.__name__.replace("_", " "), False, f"could not check: {type(error).__name__}: {error}")


def main(argv: list[str]) -> None:
    """``settle WORKDIR TIMEOUT`` or ``check WORKDIR``; the result as JSON on the last line."""
    import django
    import redis

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings

    from chaos.evidence import Journal

    command, workdir = argv[0], Path(argv[1])
    if command == "settle":
        store = redis.Redis.from_url(settings.REDIS_URL)
        settled, seconds, waiting = settle(Journal.read(workdir), store, timeout=float(argv[2]))
        result = {"settled": settled, "seconds": seconds, "waiting": waiting}
    else:
        result = {"checks": check(workdir)}
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
