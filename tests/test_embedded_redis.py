"""The embedded Redis of `make run`: started by the Procfile's watcher, stopped by its SIGTERM, data kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support import tasks
from workers import embedded_redis, queues
from workers.dramatiq_internals.consumers import GuardedRedisBroker
from workers.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_the_watcher_starts_the_server_stops_it_on_sigterm_and_a_restart_keeps_the_data(tmp_path):
    # Given the Procfile's watcher, with no REDIS_URL, and a queued job in its server
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "workers.embedded_redis", "watch", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout.readline().strip() == f"embedded Redis at {embedded_redis.url(tmp_path)}"
        client = redis.Redis.from_url(embedded_redis.url(tmp_path))
        client.rpush("dramatiq:default", "a queued job")

        # When honcho stops it, as one Ctrl-C does
        watcher.send_signal(signal.SIGTERM)

        # Then the watcher exits by itself, cleanly, and the server is down
        assert watcher.wait(timeout=30) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert not embedded_redis.is_running(tmp_path)

    # And the next start finds the queued job
    embedded_redis.ensure_running(tmp_path)
    try:
        wait_until(lambda: embedded_redis.is_running(tmp_path), timeout=10, what="the embedded Redis")
        assert redis.Redis.from_url(embedded_redis.url(tmp_path)).lrange("dramatiq:default", 0, -1) == [b"a queued job"]
    finally:
        embedded_redis.stop(tmp_path)


@pytest.fixture
def embedded_url(tmp_path):
    """The embedded Redis as `make run` starts it: a server on a unix socket under VAR_DIR."""
    embedded_redis.ensure_running(tmp_path)
    yield embedded_redis.url(tmp_path)
    embedded_redis.stop(tmp_path)


@pytest.mark.delivery
def test_the_project_broker_and_a_worker_run_jobs_on_the_embedded_redis(embedded_url, start_worker, settings):
    # Given the project's broker on the embedded Redis's socket, and a worker on it
    settings.REDIS_URL = embedded_url
    broker = GuardedRedisBroker(url=embedded_url, middleware=[])
    for name in queues.names():
        broker.declare_queue(name)
    start_worker(redis_url=embedded_url)

    # When a job is sent
    broker.enqueue(tasks.noop.message("on-the-socket"))

    # Then it runs
    wait_until(lambda: tasks.recorded("on-the-socket"), timeout=30, what="the job sent over the unix socket")
    broker.close()
