"""Settings of the job platform: queues, message limits and signing, the broker, its middleware, tasks, scheduler.

Read from the environment like the rest (``config/settings.py`` imports every name in ``__all__``);
see the README's configuration table. https://github.com/Bogdanp/django_dramatiq
"""

from __future__ import annotations

import os

from config.environment import Env, var_dir
from workers import embedded_redis

__all__ = [
    "BROKER_URL",
    "CONSOLE_REFRESH_MS",
    "DRAMATIQ_AUTODISCOVER_MODULES",
    "DRAMATIQ_BROKER",
    "DRAMATIQ_ENCODER",
    "JOB_HISTORY_DAYS",
    "JOB_HOUSEKEEPING_INTERVAL",
    "JOB_MAX_MESSAGE_BYTES",
    "JOB_QUEUES",
    "JOB_RECORD_RETENTION_DAYS",
    "JOB_RESERVED_THREADS",
    "JOB_SIGNING_KEYS",
    "PROMETHEUS_PORT",
    "REDIS_URL",
    "SCHEDULER_CATCH_UP_HOURS",
    "SCHEDULER_LOCK_RENEW",
    "SCHEDULER_LOCK_TTL",
    "STATSD_HOST",
    "STATSD_PORT",
    "STATSD_PREFIX",
    "TASKS",
    "TASK_RESULT_TTL",
]

env = Env()
VAR_DIR = var_dir()

# JOBS
# The queues and their weights: a busy worker serves each queue in proportion to its weight.
JOB_QUEUES = {"urgent": 6, "default": 3, "mailers": 2, "low": 1}
# Threads kept for one queue alone, each queue in a worker process of its own ("urgent=2"): see runworkers.
JOB_RESERVED_THREADS = env.dict("JOB_RESERVED_THREADS", cast={"value": int}, default={})
# Seconds between two rounds of housekeeping (dead workers' messages put back, the outbox relayed),
# done by one live worker process of the cluster at a time.
JOB_HOUSEKEEPING_INTERVAL = env.float("JOB_HOUSEKEEPING_INTERVAL", default=5)
# Dead letters and finished batches older than this many days are pruned every night.
JOB_RECORD_RETENTION_DAYS = env.int("JOB_RECORD_RETENTION_DAYS", default=30)
# Days of job history (every finished run) kept for the console's history page.
JOB_HISTORY_DAYS = env.int("JOB_HISTORY_DAYS", default=7)
# Milliseconds between two refreshes of an open console page.
CONSOLE_REFRESH_MS = env.int("CONSOLE_REFRESH_MS", default=3000)
# The largest job message (its JSON), in bytes: a larger one is refused when sent and when received.
JOB_MAX_MESSAGE_BYTES = env.int("JOB_MAX_MESSAGE_BYTES", default=256 * 1024)
# Keys of the HMAC on every message, comma-separated: the first signs, all verify (to rotate,
# put the new key first and drop the old one once no message signed with it can be waiting).
# Unset: one key derived from SECRET_KEY.
JOB_SIGNING_KEYS = env.list("JOB_SIGNING_KEYS", default=[])
DRAMATIQ_ENCODER = "workers.signing.SignedJSONEncoder"

# BROKER_URL chooses the broker: unset means Redis at REDIS_URL, amqp://... means RabbitMQ,
# stub:// means Dramatiq's in-memory StubBroker (the test suite's own process).
BROKER_URL = env.str("BROKER_URL", default="")
# Unset: the embedded Redis under VAR_DIR, which `manage.py` and the WSGI application start (workers.embedded_redis).
REDIS_URL = env.str("REDIS_URL", default="") or embedded_redis.url(VAR_DIR)

if BROKER_URL.startswith("stub:"):
    _broker = {"BROKER": "dramatiq.brokers.stub.StubBroker", "OPTIONS": {}}
elif BROKER_URL.startswith("amqp"):
    _broker = {"BROKER": "workers.dramatiq_internals.consumers.GuardedRabbitmqBroker", "OPTIONS": {"url": BROKER_URL}}
else:
    _broker = {
        "BROKER": "workers.dramatiq_internals.consumers.GuardedRedisBroker",
        "OPTIONS": {
            "url": REDIS_URL,
            # A worker silent this long (in ms) is dead: the housekeeping of the live workers puts
            # its unacknowledged messages back (a live worker beats at least once a second).
            "heartbeat_timeout": env.int("REDIS_HEARTBEAT_TIMEOUT_MS", default=15000),
            # How many broker commands in a million also run Dramatiq's own recovery: none by
            # default, since housekeeping does it every few seconds and puts messages back first
            # in line, where the broker's own puts them last.
            "maintenance_chance": env.int("REDIS_MAINTENANCE_CHANCE", default=0),
        },
    }

# Worker metrics over HTTP for Prometheus, one endpoint per worker host (off when unset).
PROMETHEUS_PORT = env.str("PROMETHEUS_PORT", default="")
if PROMETHEUS_PORT:
    os.environ.setdefault("dramatiq_prom_port", PROMETHEUS_PORT)
    os.environ.setdefault("dramatiq_prom_host", env.str("PROMETHEUS_HOST", default="127.0.0.1"))
    os.environ.setdefault("dramatiq_prom_db", str(VAR_DIR / "prometheus"))

# StatsD timings and counters per actor (off when unset).
STATSD_HOST = env.str("STATSD_HOST", default="")
STATSD_PORT = env.int("STATSD_PORT", default=8125)
STATSD_PREFIX = env.str("STATSD_PREFIX", default="backoffice")

# The list is explicit: django-dramatiq's default names middleware that Dramatiq 2 moved.
# Order matters: "before" hooks run top-down, so JobLog logs the start only of a job UniqueJobs let run;
# "after" hooks run bottom-up, so JobLog, StatsdMetrics and JobHistory see the outcome Retries decided.
DRAMATIQ_BROKER = {
    **_broker,
    "MIDDLEWARE": [
        *(["dramatiq.middleware.prometheus.Prometheus"] if PROMETHEUS_PORT else []),
        "workers.middleware.MessageSizeLimit",
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.ShutdownNotifications",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Pipelines",
        "dramatiq.middleware.CurrentMessage",
        "workers.middleware.WeightedQueues",
        "workers.middleware.Housekeeping",
        "workers.middleware.CrashGuard",
        "workers.middleware.Cancellation",
        "workers.middleware.ArgumentCheck",
        "workers.middleware.FlowControl",
        "workers.middleware.RejectionRecord",
        "workers.middleware.JobHistory",
        "workers.middleware.WorkerPresence",
        "workers.middleware.UniqueJobs",
        "workers.middleware.JobLog",
        "workers.middleware.StatsdMetrics",
        "workers.middleware.tracing.Tracing",
        "workers.middleware.BatchProgress",
        "workers.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]

# TASKS: Django's tasks API (django-tasks, django.tasks in Django 6) on the platform's workers: each
# @task is an actor of its own, enqueued through the outbox. https://docs.djangoproject.com/en/6.0/topics/tasks/
TASKS = {"default": {"BACKEND": "workers.tasks_backend.DramatiqBackend"}}
# Seconds a task's result (status, return value, errors) is kept after its last change.
TASK_RESULT_TTL = env.int("TASK_RESULT_TTL", default=24 * 3600)

# SCHEDULER: `manage.py runscheduler` sends the jobs declared with @cron. Any number may run; one
# leads under a Redis lock that it renews every SCHEDULER_LOCK_RENEW seconds (at most half the
# TTL), and a standby takes over within SCHEDULER_LOCK_TTL seconds (plus one renewal) of its death.
SCHEDULER_LOCK_TTL = env.float("SCHEDULER_LOCK_TTL", default=10)
SCHEDULER_LOCK_RENEW = env.float("SCHEDULER_LOCK_RENEW", default=2)
# A run missed while no scheduler ran is sent once on leading if it is at most this many hours old.
SCHEDULER_CATCH_UP_HOURS = env.float("SCHEDULER_CATCH_UP_HOURS", default=24)
