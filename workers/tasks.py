"""Platform actors on a schedule: prune old job records.

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
from workers.housekeeping import job_records_prune


@cron("30 3 * * *")
@dramatiq.actor(queue_name=queues.LOW, max_retries=3)
def prune_job_records() -> None:
    job_records_prune(older_than=timedelta(days=settings.JOB_RECORD_RETENTION_DAYS))
