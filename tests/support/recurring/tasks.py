"""A recurring job that records each run with the fire time it was sent for.

Its schedule is CronTrigger fields as JSON in RECURRING_TEST_SCHEDULE (every 6 seconds when
unset), in the shop's time zone, added to dramatiq-crontab's registry as ``@cron`` would add a
cron line: ``@cron`` only takes five fields, minutes at the finest.
"""

from __future__ import annotations

import json
import os

import dramatiq
import dramatiq_crontab
from apscheduler.triggers.cron import CronTrigger
from django.utils import timezone
from dramatiq.middleware import CurrentMessage

from tests.support.tasks import record
from workers import queues
from workers.schedules import FIRE_TIME_OPTION

#: Where the runs are recorded (read them with ``tests.support.tasks.recorded``).
RUNS = "recurring-runs"

SCHEDULE = json.loads(os.environ.get("RECURRING_TEST_SCHEDULE") or '{"second": "*/6"}')


@dramatiq.actor(queue_name=queues.URGENT, max_retries=0)
def record_fire() -> None:
    message = CurrentMessage.get_current_message()
    record(RUNS, fire_time=message.options.get(FIRE_TIME_OPTION), message_id=message.message_id)


dramatiq_crontab.scheduler.add_job(
    record_fire.send,
    CronTrigger(**SCHEDULE, timezone=timezone.get_default_timezone()),
    name=record_fire.actor_name,
)
