"""Settings for the back office, read from the environment with safe local defaults.

Production differs from a laptop only by environment variables; see the README's
configuration table. https://docs.djangoproject.com/en/5.2/ref/settings/
"""

from __future__ import annotations

from config.environment import BASE_DIR, Env, var_dir
from config.job_settings import *  # noqa: F403  (the job platform's settings: queues, broker, tasks, scheduler)

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

# JOBS, BROKER, TASKS, SCHEDULER: config/job_settings.py, imported above.

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
