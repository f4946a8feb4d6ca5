"""Fixtures shared by the whole suite: enqueued jobs, a real Redis, real workers."""

from __future__ import annotations

import os

import pytest
import redis as redis_lib
from django.db import connection
from dramatiq.brokers.redis import RedisBroker

from workers import queues
from workers.dramatiq_internals.consumers import GuardedRedisBroker
from workers.testing import Jobs, RedisServer, WorkerProcess, database_url


@pytest.fixture
def jobs() -> Jobs:
    """The StubBroker's jobs, emptied before and after the test."""
    helper = Jobs()
    helper.clear()
    yield helper
    helper.clear()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis for delivery tests: REDIS_URL's server when set (database 15, flushed), else a private one."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        client = redis_lib.Redis.from_url(configured)
        kwargs = client.connection_pool.connection_kwargs
        url = f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/15"
        if kwargs.get("password"):
            url = f"redis://:{kwargs['password']}@{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/15"
        yield url
        return
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_client(redis_url, settings) -> redis_lib.Redis:
    """A client on the delivery Redis, flushed; settings.REDIS_URL points at it for the test."""
    settings.REDIS_URL = redis_url
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def redis_broker(redis_client, redis_url) -> RedisBroker:
    """A broker without middleware for the test process to send messages that real workers consume; its
    sends ring the queues' doorbells, as the project's do."""
    broker = GuardedRedisBroker(url=redis_url, middleware=[])
    for name in queues.names():
        broker.declare_queue(name)
    yield broker
    broker.close()


@pytest.fixture
def private_redis(tmp_path) -> RedisServer:
    """A Redis of the test's own, for tests that stop, kill or restart it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def start_worker(transactional_db, request):
    """Start real ``rundramatiq`` workers sharing the test database; all stopped after the test."""
    started: list[WorkerProcess] = []

    def start(*, redis_url: str, env: dict | None = None, **options) -> WorkerProcess:
        worker_env = {
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url(connection.settings_dict),
            "EXTRA_APPS": "tests.support",
            "BROKER_URL": None,
            **(env or {}),
        }
        worker = WorkerProcess(env=worker_env, **options)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # A failed delivery test shows what its workers said: the only trace of a failure in CI.
        for number, worker in enumerate(started, 1):
            print(f"--- worker {number} log (last 200 lines) ---", *worker.lines[-200:], sep="\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the test's own outcome on its node, for fixtures that add detail to a failure."""
    report = yield
    if report.when == "call":
        item.report_call = report
    return report


def pytest_sessionfinish(session, exitstatus):
    """With REQUIRE_ALL_TESTS set (CI with every service up), a skipped test fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("REQUIRE_ALL_TESTS") and skipped:
        reporter.write_line(f"REQUIRE_ALL_TESTS: {len(skipped)} test(s) skipped; every service is up here.", red=True)
        session.exitstatus = 1


@pytest.fixture
def perform_jobs(jobs, django_capture_on_commit_callbacks):
    """Run enqueued jobs, and what they enqueue after commit, until nothing is left.

    The test's transaction never commits, so the on-commit callbacks that jobs register are
    captured and run as if it had. Returns the number of jobs run.
    """

    def perform() -> int:
        total = 0
        while True:
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                ran = jobs.drain()
            total += ran
            if not ran and not callbacks:
                return total

    return perform
