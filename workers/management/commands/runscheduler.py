"""Run the recurring jobs declared with @cron: start as many as you like, one leads at a time."""

from __future__ import annotations

import signal
from datetime import timedelta

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from redis.backoff import NoBackoff
from redis.retry import Retry

from workers.schedule_pauses import SchedulePauses
from workers.scheduler import Scheduler
from workers.schedules import recurring_jobs


class Command(BaseCommand):
    help = (
        "Send the recurring jobs declared with @cron when they are due. Any number may run: one leads, "
        "the others take over when it dies; a run missed while none ran is sent once (see the README)."
    )

    def handle(self, *args, **options) -> None:
        ttl, renew = settings.SCHEDULER_LOCK_TTL, settings.SCHEDULER_LOCK_RENEW
        if not 0 < renew * 2 <= ttl:
            raise CommandError(f"SCHEDULER_LOCK_RENEW ({renew}) must be above 0 and at most half SCHEDULER_LOCK_TTL")
        # One try per call, timing out well within the lock's TTL: a leader must learn that Redis
        # is away while its lease still holds, not after redis-py's default retries.
        timeout = min(2.0, ttl / 3)
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        scheduler = Scheduler(
            client=client,
            jobs=recurring_jobs(),
            lock_ttl=ttl,
            renew_interval=renew,
            catch_up=timedelta(hours=settings.SCHEDULER_CATCH_UP_HOURS),
            pauses=SchedulePauses(),
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: scheduler.stop())
        scheduler.run()
