"""Recurring jobs: the schedules declared with ``@cron``, their fire times, and what was last sent.

The declarations stay dramatiq-crontab's: ``@cron("5 0 * * *")`` on an actor adds a job to
``dramatiq_crontab.scheduler`` (an APScheduler scheduler that is never started here), whose
``CronTrigger`` computes every fire time. ``workers.scheduler`` reads them from there and
records each fire it sends in a Redis hash, which ``recurring_job_list`` reads for operators.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dramatiq
import dramatiq_crontab
import redis
from apscheduler.triggers.cron import CronTrigger
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import module_has_submodule

#: The message option that carries the fire time a scheduled message was sent for (ISO 8601, UTC).
FIRE_TIME_OPTION = "fire_time"

NAMESPACE = "backoffice"
#: The detail of a last run the scheduler skipped because the job was paused.
PAUSED = "paused"


@dataclass(frozen=True)
class RecurringJob:
    """One schedule: its name (the actor's), its trigger, and how to send it for a fire time."""

    name: str
    trigger: CronTrigger
    send: Callable[[datetime], str | None]
    #: The message ``send`` sends for a fire time (None for a plain function), to send it another way (run now).
    message: Callable[[datetime], dramatiq.Message] | None = None

    @property
    def cron(self) -> str:
        """The cron line, with a leading seconds field only when the schedule has one."""
        fields = {field.name: str(field) for field in self.trigger.fields}
        line = " ".join(fields[name] for name in ("minute", "hour", "day", "month", "day_of_week"))
        return line if fields["second"] == "0" else f"{fields['second']} {line}"

    @property
    def time_zone(self) -> str:
        return str(self.trigger.timezone)


@dataclass(frozen=True)
class LastRun:
    fire_time: datetime
    sent: bool
    attempted_at: datetime
    detail: str


@dataclass(frozen=True)
class RecurringJobStatus:
    name: str
    cron: str
    time_zone: str
    last_run: LastRun | None
    next_run: datetime | None


def recurring_jobs() -> list[RecurringJob]:
    """The jobs declared with ``@cron`` in the installed apps' tasks modules."""
    _import_tasks_modules()
    jobs = []
    for entry in dramatiq_crontab.scheduler.get_jobs():
        if not isinstance(entry.trigger, CronTrigger):
            # An interval counts from each process's start: schedulers would not agree on its fire times.
            raise ImproperlyConfigured(f"recurring job {entry.name}: only cron schedules are supported")
        jobs.append(RecurringJob(name=entry.name, trigger=entry.trigger, send=_sender(entry), message=_message(entry)))
    names = [job.name for job in jobs]
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise ImproperlyConfigured(f"more than one schedule for {', '.join(twice)}: their fires would share claims")
    return jobs


def _import_tasks_modules() -> None:
    """Import the modules workers import (``DRAMATIQ_AUTODISCOVER_MODULES``), which declare the schedules."""
    for config in apps.get_app_configs():
        # dramatiq-crontab's own module only schedules a heartbeat for Sentry's cron monitors.
        if config.name == "dramatiq_crontab":
            continue
        for name in getattr(settings, "DRAMATIQ_AUTODISCOVER_MODULES", ["tasks"]):
            if module_has_submodule(config.module, name):
                importlib.import_module(f"{config.name}.{name}")


def _message(entry) -> Callable[[datetime], dramatiq.Message] | None:
    actor = getattr(entry.func, "__self__", None)
    if not isinstance(actor, dramatiq.Actor):
        return None

    def message(fire_time: datetime) -> dramatiq.Message:
        options = {FIRE_TIME_OPTION: fire_time.astimezone(UTC).isoformat()}
        return actor.message_with_options(args=entry.args, kwargs=entry.kwargs, **options)

    return message


def _sender(entry) -> Callable[[datetime], str | None]:
    if build := _message(entry):
        actor = entry.func.__self__

        def send(fire_time: datetime) -> str:
            return actor.broker.enqueue(build(fire_time)).message_id

        return send

    def call(fire_time: datetime) -> None:
        entry.func(*entry.args, **entry.kwargs)

    return call


def latest_fire(trigger: CronTrigger, *, after: datetime, now: datetime) -> datetime | None:
    """The latest fire time in (``after``, ``now``], or None.

    Looks back from ``now`` over spans that double, so a job due every second and one due once
    a year both cost a few dozen trigger calls, not one call per fire since ``after``.
    """
    span = timedelta(seconds=1)
    while True:
        start = max(now - span, after)
        # Given a previous fire time, the trigger answers the first fire strictly after it.
        fire = trigger.get_next_fire_time(start, start)
        if fire is not None and fire <= now:
            while (following := trigger.get_next_fire_time(fire, fire)) is not None and following <= now:
                fire = following
            return fire
        if start == after:
            return None
        span *= 2


def last_runs_key(namespace: str) -> str:
    return f"{namespace}:scheduler:last"


def last_run_record(
    client: redis.Redis, *, namespace: str, name: str, fire_time: datetime, sent: bool, detail: str
) -> None:
    """Remember the latest fire of ``name`` and whether its send succeeded (a message id, or the error)."""
    value = {
        "fire_time": fire_time.astimezone(UTC).isoformat(),
        "sent": sent,
        "attempted_at": timezone.now().isoformat(),
        "detail": detail,
    }
    client.hset(last_runs_key(namespace), name, json.dumps(value))


def last_runs(client: redis.Redis, *, namespace: str) -> dict[str, LastRun]:
    runs = {}
    for name, raw in client.hgetall(last_runs_key(namespace)).items():
        value = json.loads(raw)
        runs[name.decode()] = LastRun(
            fire_time=datetime.fromisoformat(value["fire_time"]),
            sent=value["sent"],
            attempted_at=datetime.fromisoformat(value["attempted_at"]),
            detail=value["detail"],
        )
    return runs


def recurring_job_list(
    *, client: redis.Redis | None = None, namespace: str = NAMESPACE, now: datetime | None = None
) -> list[RecurringJobStatus]:
    """Each recurring job with its cron line, time zone, last run and next run, by name."""
    client = client or redis.Redis.from_url(settings.REDIS_URL)
    now = now or timezone.now()
    runs = last_runs(client, namespace=namespace)
    return [
        RecurringJobStatus(
            name=job.name,
            cron=job.cron,
            time_zone=job.time_zone,
            last_run=runs.get(job.name),
            next_run=job.trigger.get_next_fire_time(None, now),
        )
        for job in sorted(recurring_jobs(), key=lambda job: job.name)
    ]
