"""Settings for the back office, read from the environment with safe local defaults.

Production differs from a laptop only by environment variables; see the README's
configuration table. https://docs.djangoproject.com/en/5.2/ref/settings/
"""

from __future__ import annotations

import os

from config.environment import BASE_DIR, Env, var_dir
from workers import embedded_redis

env = Env()

VAR_DIR = var_dir()
VAR_DIR.mkdir(parents=True, exist_ok=True)


# GENERAL
# https://docs.djangoproject.com/en/5.2/ref/settings/#debug
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-local-development-key"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Berlin")
USE_TZ = True
LANGUAGE_CODE = "en-us"
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# System checks to skip, comma-separated ids: a production-like test run silences orders.E001 (the sandbox
# payment gateway with DEBUG off). https://docs.djangoproject.com/en/5.2/ref/settings/#silenced-system-checks
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# APPS
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_dramatiq",
    "django_tasks",
    # dramatiq-crontab's @cron registry is used without its app: its `crontab` command, with a
    # lock of its own, would double the runs of `runscheduler`.
    "workers",
    "mail",
    "orders",
    "reports",
    # Extra apps for one process, e.g. the test suite's own actors in a worker it starts.
    *env.list("EXTRA_APPS", default=[]),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# UPLOADS
# https://docs.djangoproject.com/en/5.2/ref/settings/#media-root
# Uploaded files (product CSVs to import) live here; they are not served by the application.
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
# The largest product CSV the admin accepts, in bytes.
IMPORT_MAX_UPLOAD_BYTES = int(env.float("IMPORT_MAX_UPLOAD_MB", default=50) * 1024 * 1024)
# Uploaded import files are deleted this many days after their import finished (the import stays).
IMPORT_FILE_RETENTION_DAYS = env.int("IMPORT_FILE_RETENTION_DAYS", default=30)

# DATABASES
# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
# SQLite runs in WAL mode with IMMEDIATE transactions so that several worker processes and
# threads queue for the write lock instead of failing with "database is locked".
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"].update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that worker processes started by the tests see the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}

# CACHES: the local-memory default is enough; job state lives in Redis and the database.

# EMAIL
# https://docs.djangoproject.com/en/5.2/topics/email/
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="backoffice@localhost")
STAFF_ALERT_EMAILS = env.list("STAFF_ALERT_EMAILS", default=["staff@localhost"])
# The mail provider's limits, as a count per period ("10/s", "600/m"): in all, and per recipient domain.
EMAIL_RATE = env.str("EMAIL_RATE", default="10/s")
EMAIL_RATE_PER_DOMAIN = env.str("EMAIL_RATE_PER_DOMAIN", default="5/s")

# PAYMENTS
# The gateway class (a dotted path); the sandbox has deterministic test tokens.
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="orders.gateway.SandboxGateway")

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

# REPORTS
# Who gets the daily report by mail; empty: nobody, the report is only stored.
REPORT_RECIPIENTS = env.list("REPORT_RECIPIENTS", default=["staff@localhost"])
# Report jobs running at once (a backfill queues one per day), so that they leave database connections to orders.
REPORT_CONCURRENCY = env.int("REPORT_CONCURRENCY", default=2)

# LOGGING
# https://docs.djangoproject.com/en/5.2/topics/logging/
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# One clock a line. Under `make run` honcho stamps every line with the machine's local time, so
# the Procfile turns the processes' own stamp off (it would be a second clock, in TIME_ZONE).
LOG_TIMESTAMPS = env.bool("LOG_TIMESTAMPS", default=True)
LOG_FORMAT = ("%(asctime)s " if LOG_TIMESTAMPS else "") + "%(levelname)s %(name)s %(message)s"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": LOG_FORMAT}},
    "filters": {
        "redact": {"()": "workers.redaction.RedactingFilter"},
        "retry_log_level": {"()": "workers.retry_logging.RetryLogLevel"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # runserver's request lines, in the same format (its own carries a third clock).
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # A failure that will be retried is a warning line; one that ends the job keeps its traceback.
        "dramatiq.worker.WorkerThread": {"filters": ["retry_log_level"]},
        # JobLog logs each task's start and end already; django-tasks' own lines would double them.
        "django_tasks": {"level": "WARNING"},
    },
}
