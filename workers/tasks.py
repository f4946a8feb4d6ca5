"""Platform actors: prune old job records on a schedule, act on dead letters in bulk.

Recovering dead workers' messages and relaying the outbox are not jobs: a backlog would delay
them exactly when they are needed. Every worker's housekeeping does them every few seconds
(``workers.middleware.Housekeeping``).
"""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from django.conf import settings
from dramatiq_crontab import cron

from workers import queues
from workers.dead_letter_bulk import dead_letters_chunk_apply
from workers.housekeeping import job_records_prune


@cron("30 3 * * *")
@dramatiq.actor(queue_name=queues.LOW, max_retries=3)
def prune_job_records() -> None:
    job_records_prune(older_than=timedelta(days=settings.JOB_RECORD_RETENTION_DAYS))


@dramatiq.actor(queue_name=queues.LOW, max_retries=5)
def apply_dead_letter_action(action: str, filters: dict, first_id: int, last_id: int) -> None:
    """One chunk of a bulk action on dead letters (``workers.dead_letter_bulk``)."""
    dead_letters_chunk_apply(action=action, filters=filters, first_id=first_id, last_id=last_id)
