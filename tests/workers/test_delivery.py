"""The platform through a real rundramatiq worker and a real Redis: retries, callbacks, logs, metrics."""

from __future__ import annotations

import re
import socket
import urllib.request

import pytest

from tests.support import tasks
from workers.middleware.presence import live_workers
from workers.models import DeadLetter
from workers.testing import free_port, wait_until

pytestmark = pytest.mark.delivery


def test_a_real_worker_retries_on_the_schedule_calls_back_once_and_discards(start_worker, redis_broker, redis_url):
    # Given a worker and three jobs: one that recovers, one that never does, one not retryable
    worker = start_worker(redis_url=redis_url)
    flaky = redis_broker.enqueue(tasks.flaky.message("flaky", 2))
    exhausting = redis_broker.enqueue(tasks.always_fails.message(key="exhausting"))
    discarded = redis_broker.enqueue(tasks.refuses.message("discarded", "permanent"))

    # When the worker has run them to their end
    wait_until(lambda: len(tasks.recorded("flaky")) == 3, timeout=30, what="three attempts of flaky")
    wait_until(lambda: tasks.recorded("exhausting:exhausted"), timeout=30, what="the exhausted callback")
    worker.wait_for_log(r"job failed actor=refuses .* outcome=failure")

    # Then the retries were scheduled 2 s and then 4 s out, and neither ran early
    scheduled = worker.log_lines(rf"Retrying message {flaky.message_id} of flaky in (\d+) ms")
    delays = [int(re.search(r"in (\d+) ms", line).group(1)) / 1000 for line in scheduled]
    assert delays == [2.0, 4.0]
    times = [attempt["at"] for attempt in tasks.recorded("flaky")]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert all(delay <= gap < delay + 10 for delay, gap in zip(delays, gaps, strict=True)), (delays, gaps)
    # And the exhausted callback ran exactly once, with that message and its error
    assert len(tasks.recorded("exhausting")) == 2
    callbacks = tasks.recorded("exhausting:exhausted")
    assert [(c["message_id"], c["error"]) for c in callbacks] == [
        (exhausting.message_id, "ConnectionError: still down")
    ]
    # And the worker logged flaky's two failures as warnings that promise a retry, and only the
    # failures that ended a job as errors with a traceback
    retried = worker.log_lines(r"WARNING dramatiq.worker.WorkerThread Failed to process message flaky message_id=")
    assert len(retried) == 2 and all(line.endswith("it will be retried.") for line in retried)
    ended = worker.log_lines(r"ERROR dramatiq.worker.WorkerThread Failed to process message")
    assert sorted(re.search(r"message (\w+) message_id=", line).group(1) for line in ended) == [
        "always_fails",
        "refuses",
    ]
    # And no line shows a job's arguments
    assert not worker.log_lines(r"flaky\('flaky'|refuses\('discarded'")
    # And the discarded job ran once and was never retried
    assert len(tasks.recorded("discarded")) == 1
    reasons = dict(DeadLetter.objects.values_list("message_id", "reason"))
    assert reasons == {exhausting.message_id: "exhausted", discarded.message_id: "discarded"}


def test_each_job_logs_its_start_and_its_end_with_a_duration(start_worker, redis_broker, redis_url):
    worker = start_worker(redis_url=redis_url)
    message = redis_broker.enqueue(tasks.slow.message("slow", 0.25))

    finished = worker.wait_for_log(rf"job finished actor=slow .*message_id={message.message_id}")

    started = worker.log_lines(rf"job started actor=slow queue=low message_id={message.message_id} attempt=1")
    assert len(started) == 1
    assert "args=[redacted: 2 positional, 0 keyword]" in started[0]
    duration = float(re.search(r"duration_ms=([\d.]+)", finished[0]).group(1))
    assert 250 <= duration < 5000


def test_metrics_reach_statsd_and_prometheus(start_worker, redis_broker, redis_url):
    # Given a StatsD listener and a worker that reports to it and serves Prometheus metrics
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(("127.0.0.1", 0))
    statsd.settimeout(20)
    prometheus_port = free_port()
    start_worker(
        redis_url=redis_url,
        env={
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(statsd.getsockname()[1]),
            "PROMETHEUS_PORT": str(prometheus_port),
        },
    )

    # When one job succeeds
    redis_broker.enqueue(tasks.noop.message("metrics"))

    # Then StatsD gets its timing and its success counter
    packets = set()
    while not {"backoffice.jobs.noop.success:1|c"} <= packets:
        packets |= set(statsd.recv(4096).decode().split("\n"))
    assert any(re.fullmatch(r"backoffice\.jobs\.noop\.duration:[\d.]+\|ms", p) for p in packets), packets

    # And the worker's Prometheus endpoint counts the message
    def scrape() -> str:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=2).read().decode()
        except OSError:
            return ""

    wait_until(lambda: 'dramatiq_messages_total{actor_name="noop"' in scrape(), timeout=20, what="prometheus")
    statsd.close()


def test_the_dashboard_counts_worker_processes_not_every_client_of_the_broker(start_worker, redis_broker, redis_url):
    # Given two worker processes, and this process sending jobs as the web app and scheduler do
    worker = start_worker(redis_url=redis_url, processes=2)
    redis_broker.enqueue(tasks.noop.message("presence"))

    # Then the dashboard counts the two workers only
    wait_until(lambda: live_workers(redis_broker) == 2, timeout=30, what="two live worker processes")
    redis_broker.enqueue(tasks.noop.message("presence"))
    assert live_workers(redis_broker) == 2

    # And none once they have stopped, at the latest three beats later (a killed worker says no goodbye)
    worker.stop()
    wait_until(lambda: live_workers(redis_broker) == 0, timeout=30, what="the stopped workers to drop out")
