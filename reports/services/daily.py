"""The daily report: stored once per day, regenerated on demand, mailed once, backfilled as a batch."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.db import transaction

from reports.errors import InvalidDay
from reports.models import Report
from reports.periods import ensure_over
from reports.selectors import report_daily_figures
from reports.services.mail import report_mail_queue
from workers.batches import batch_add, batch_open, batch_seal
from workers.enqueue import actor_named, enqueue_on_commit
from workers.models import Batch

logger = logging.getLogger(__name__)

GENERATE_DAILY_REPORT = actor_named("generate_daily_report")


def report_daily_build(*, day: date, force: bool = False, mail: bool = True) -> Report:
    """Store the daily report of a day that has ended, and queue its mail; returns the report.

    Idempotent and race-safe: the unique constraint on type and date decides which of two
    concurrent runs stores the report, and the other one returns it. A stored report is kept
    as it is unless ``force``, which computes it again in place. The mail goes once per report
    whoever asks; ``mail=False`` queues none (a backfill of days long past).
    """
    ensure_over(day)
    lookup = {"type": Report.Type.DAILY, "date": day}
    with transaction.atomic():
        if force:
            report, created = Report.objects.update_or_create(
                **lookup, defaults={"data": report_daily_figures(day=day)}
            )
        else:
            # A callable default: the figures are computed only when there is no report yet.
            report, created = Report.objects.get_or_create(
                **lookup, defaults={"data": lambda: report_daily_figures(day=day)}
            )
        if mail:
            report_mail_queue(report=report)
    outcome = "stored" if created else ("regenerated" if force else "kept as it was")
    logger.info("daily report %s %s", day.isoformat(), outcome)
    return report


def report_daily_backfill(*, first: date, last: date, force: bool = False, mail: bool = False) -> Batch:
    """Queue the daily report of every day from ``first`` to ``last`` as one batch; returns it.

    The jobs are sent when the transaction commits; the batch counts them as they end. Days
    long past are not mailed unless ``mail``: a year of backfill is not a year of mails.
    """
    ensure_over(last)
    if first > last:
        raise InvalidDay(f"the range starts on {first.isoformat()}, after its end {last.isoformat()}")
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    with transaction.atomic():
        batch = batch_open(description=f"Daily reports {first.isoformat()} to {last.isoformat()}")
        batch_add(
            batch, [GENERATE_DAILY_REPORT.actor.message(date=day.isoformat(), force=force, mail=mail) for day in days]
        )
        batch_seal(batch)
    batch.refresh_from_db()
    return batch


def report_daily_queue_regeneration(*, days: list[date]) -> int:
    """Queue the daily reports of these days to be computed again, after commit; returns how many.

    Regenerating does not mail: a report is mailed once, when it is first made.
    """
    with transaction.atomic():
        for day in sorted(set(days)):
            enqueue_on_commit(GENERATE_DAILY_REPORT, date=day.isoformat(), force=True, mail=False)
    return len(set(days))
