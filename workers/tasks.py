"""Platform actors on a schedule: prune old job records, recover dead workers' messages, relay the outbox."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from django.conf import settings
from dramatiq_crontab import cron

from workers import queues
from workers.housekeeping import dead_workers_requeue, job_records_prune
from workers.outbox import outbox_relay


@cron("30 3 * * *")
@dramatiq.actor(queue_name=queues.LOW, max_retries=3)
def prune_job_records() -> None:
    job_records_prune(older_than=timedelta(days=settings.JOB_RECORD_RETENTION_DAYS))


# Every minute, so a dead worker's jobs wait about one heartbeat timeout, not hours of chance.
# A run that waited longer than a minute is dropped: the next one does the same work.
@cron("* * * * *")
@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=0, max_age=60_000)
def requeue_dead_workers_messages() -> None:
    dead_workers_requeue()


# Every minute: jobs whose commit-time send failed (the broker was down) go out within a minute.
@cron("* * * * *")
@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=0, max_age=60_000)
def relay_outbox() -> None:
    outbox_relay()
