"""A job that kills its worker process is dead-lettered after max_crashes runs; the others keep working."""

from __future__ import annotations

import pytest

from tests.support import tasks
from workers.models import DeadLetter
from workers.testing import wait_until

pytestmark = pytest.mark.delivery

# Quick recovery: a worker silent for 2 s is dead, and housekeeping looks every second.
FAST_RECOVERY = {"REDIS_HEARTBEAT_TIMEOUT_MS": "2000", "JOB_HOUSEKEEPING_INTERVAL": "1"}


def test_a_job_that_kills_its_worker_is_dead_lettered_after_three_crashes(start_worker, redis_broker, redis_url):
    # Given two supervised worker processes, and a job that kills whichever worker runs it
    workers = start_worker(redis_url=redis_url, env=FAST_RECOVERY, processes=2, threads=2, supervised=True)
    workers.wait_for_log(r"Worker process is ready for action", count=2)
    poison = redis_broker.enqueue(tasks.kills_its_worker.message("poison"))

    # When it has crashed its workers and good jobs are sent behind it
    wait_until(lambda: len(tasks.recorded("poison")) >= 1, timeout=30, what="the first crash")
    for number in range(20):
        redis_broker.enqueue(tasks.noop.message(f"good-{number}"))

    # Then it becomes a dead letter "crashed" after exactly three runs, and never runs again
    wait_until(
        lambda: DeadLetter.objects.filter(message_id=poison.message_id).exists(),
        timeout=90,
        what="the crashing job in the dead letters",
    )
    letter = DeadLetter.objects.get(message_id=poison.message_id)
    assert letter.reason == "crashed"
    assert "died each time" in letter.error
    assert len(tasks.recorded("poison")) == 3
    # And every good job ran, on worker processes the supervisor started again
    wait_until(lambda: all(tasks.recorded(f"good-{number}") for number in range(20)), timeout=60, what="every good job")
    assert len(workers.log_lines(r"exited with code .*starting a new one")) == 3
    assert workers.process.poll() is None
    assert len(tasks.recorded("poison")) == 3


def test_a_worker_stopped_with_sigterm_finishes_its_job(start_worker, redis_broker, redis_url):
    # Given a supervised worker running a 2-second job
    workers = start_worker(redis_url=redis_url, threads=2, supervised=True)
    redis_broker.enqueue(tasks.slow.message("long", 2.0))
    workers.wait_for_log(r"job started actor=slow")

    # When it is stopped as a deploy or Ctrl-C would (SIGTERM)
    workers.stop()

    # Then the job finished before the worker exited, and it was not killed
    assert len(tasks.recorded("long")) == 1
    assert workers.log_lines(r"job finished actor=slow")
    assert not workers.log_lines(r"Killing worker process")
    assert workers.process.returncode == 0


def test_jobs_that_ran_beside_a_crashing_job_are_not_blamed_for_its_crashes(start_worker, redis_broker, redis_url):
    # Given one supervised worker process of four threads, and a crashing job sent together with
    # slow jobs that run beside it (and die with it) until it is found out
    workers = start_worker(redis_url=redis_url, env=FAST_RECOVERY, processes=1, threads=4, supervised=True)
    poison = redis_broker.enqueue(tasks.kills_its_worker.message("poison"))
    for number in range(6):
        redis_broker.enqueue(tasks.slow.message(f"bystander-{number}", 0.5))

    # When it has crashed its worker three times
    wait_until(
        lambda: DeadLetter.objects.filter(message_id=poison.message_id).exists(),
        timeout=120,
        what="the crashing job in the dead letters",
    )

    # Then it alone is a dead letter, after three runs, and every bystander ran to its end
    wait_until(lambda: all(tasks.recorded(f"bystander-{number}") for number in range(6)), timeout=60, what="bystanders")
    assert list(DeadLetter.objects.values_list("message_id", "reason")) == [(poison.message_id, "crashed")]
    assert len(tasks.recorded("poison")) == 3
    assert workers.log_lines(r"Running message .* of kills_its_worker alone")


def test_a_crashing_job_redelivered_after_its_dead_letter_is_refused_again(start_worker, redis_broker, redis_url):
    # Given a job dead-lettered for crashing whose worker died before the broker took it back
    workers = start_worker(redis_url=redis_url, env=FAST_RECOVERY, processes=2, threads=2, supervised=True)
    poison = redis_broker.enqueue(tasks.kills_its_worker.message("poison"))
    wait_until(
        lambda: DeadLetter.objects.filter(message_id=poison.message_id).exists(),
        timeout=120,
        what="the crashing job in the dead letters",
    )

    # When the broker hands it out again
    redis_broker.enqueue(tasks.kills_its_worker.message("poison").copy(message_id=poison.message_id))

    # Then it does not run a fourth time: its count was kept
    workers.wait_for_log(rf"Dead-lettering message {poison.message_id}", count=2, timeout=60)
    assert len(tasks.recorded("poison")) == 3
