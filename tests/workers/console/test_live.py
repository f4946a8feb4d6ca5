"""The console's live pages: queues (with pause and resume), running jobs and workers, read from real workers."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import dramatiq
import pytest
from django.contrib.auth.models import Permission, User

from tests.support import tasks
from workers.console.audit import new_token
from workers.delayed_jobs import delayed_messages
from workers.middleware.presence import worker_states
from workers.models import OperatorAction, Pause
from workers.pauses import LOADED, PausedQueues, paused_key
from workers.queue_counts import queue_stats
from workers.testing import wait_until

pytestmark = pytest.mark.django_db

QUEUES = "/admin/jobs/queues/"


def staff(client, *codenames: str) -> User:
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def act(client, action: str, queue: str, token: str | None = None):
    return client.post(QUEUES, {"action": action, "queue": queue, "token": token or new_token()})


@pytest.fixture
def live_broker(redis_broker):
    """The test process reads (and pauses on) the Redis the workers consume."""
    previous = dramatiq.get_broker()
    dramatiq.set_broker(redis_broker)
    yield redis_broker
    dramatiq.set_broker(previous)


def stats(broker, name: str):
    return next(row for row in queue_stats(broker) if row.name == name)


def parent_pid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE).group(1))


@pytest.mark.parametrize("page", ["queues", "running", "workers"])
def test_each_live_page_needs_its_permission(client, page):
    staff(client, "view_deadletter")
    assert client.get(f"/admin/jobs/{page}/").status_code == 403


def test_pausing_needs_its_own_permission(client):
    staff(client, "view_console_queues")
    assert client.get(QUEUES).status_code == 200
    assert act(client, "pause", "default").status_code == 403
    assert not Pause.objects.exists()
    assert not OperatorAction.objects.exists()


def test_a_pause_is_recorded_once_however_often_the_form_is_sent(client):
    # Given staff allowed to pause queues
    staff(client, "view_console_queues", "pause_queue")

    # When they pause the mailers queue with a double click
    token = new_token()
    first = act(client, "pause", "mailers", token)
    act(client, "pause", "mailers", token)

    # Then it is paused once, audited once, and the page says so
    assert first.status_code == 302
    assert list(Pause.objects.values_list("kind", "name", "paused_by")) == [("queue", "mailers", "ops")]
    assert list(OperatorAction.objects.values_list("action", "target", "username")) == [
        ("pause_queue", "mailers", "ops")
    ]
    page = client.get(QUEUES).content.decode()
    assert "Paused queue mailers" in page
    assert re.search(r'<tr class="queue-mailers">.*?paused</span>.*?value="resume"', page, re.DOTALL)

    # And resuming it removes the pause, audited too
    act(client, "resume", "mailers")
    assert not Pause.objects.exists()
    assert OperatorAction.objects.filter(action="resume_queue", target="mailers").count() == 1


@pytest.mark.delivery
def test_workers_follow_the_table_when_redis_missed_a_pause(live_broker, redis_client):
    # Given the low queue paused in the table while Redis, away, kept its set without it
    Pause.objects.create(kind=Pause.Kind.QUEUE, name="low", paused_by="ops")
    redis_client.sadd(paused_key(live_broker), LOADED)

    # When a worker process looks at the paused queues
    view = PausedQueues(live_broker)

    # Then it finds the table's pause, and puts it in the set for every other worker
    assert "low" in view
    assert "default" not in view
    assert redis_client.smembers(paused_key(live_broker)) == {LOADED.encode(), b"low"}


@pytest.mark.delivery
def test_a_paused_queue_keeps_its_jobs_across_a_restart_and_runs_each_once_when_resumed(
    start_worker, live_broker, redis_client, redis_url, client
):
    # Given a worker of one thread busy with a slow job, and five default jobs, three of them taken by it
    staff(client, "view_console_queues", "pause_queue")
    worker = start_worker(redis_url=redis_url, threads=1)
    live_broker.enqueue(tasks.slow.message("busy", 3.0))
    worker.wait_for_log(r"job started actor=slow")
    for _ in range(5):
        live_broker.enqueue(tasks.noop.message("paused"))
    # (the default queue's share of one thread is three jobs taken ahead)
    wait_until(
        lambda: (stats(live_broker, "default").prefetched, stats(live_broker, "default").ready) == (3, 2),
        timeout=15,
        what="three jobs taken, two left in the queue",
    )

    # When staff pause the default queue, and a delayed job of it falls due meanwhile
    assert act(client, "pause", "default").status_code == 302
    worker.wait_for_log(r"Queue 'default' is paused")
    live_broker.enqueue(tasks.noop.message("paused"), delay=500)

    # Then the taken jobs go back to the queue, the due one joins them, and other queues still run
    wait_until(lambda: stats(live_broker, "default").ready == 6, timeout=15, what="six default jobs queued")
    live_broker.enqueue(tasks.slow.message("probe", 0))
    wait_until(lambda: len(tasks.recorded("probe")) == 1, timeout=30, what="a low job run")
    assert tasks.recorded("paused") == []

    # And a new worker, even with Redis's copy of the pauses lost, still takes none of them
    worker.stop()
    redis_client.delete(paused_key(live_broker))
    worker = start_worker(redis_url=redis_url, threads=1)
    worker.wait_for_log(r"Queue 'default' is paused")
    live_broker.enqueue(tasks.slow.message("probe", 0))
    wait_until(lambda: len(tasks.recorded("probe")) == 2, timeout=30, what="a second low job run")
    assert tasks.recorded("paused") == []
    assert stats(live_broker, "default").ready == 6

    # When the queue is resumed, every job runs exactly once
    assert act(client, "resume", "default").status_code == 302
    worker.wait_for_log(r"Queue 'default' is resumed")
    wait_until(lambda: len(tasks.recorded("paused")) == 6, timeout=30, what="the six paused jobs run")
    live_broker.enqueue(tasks.noop.message("last"))
    wait_until(lambda: len(tasks.recorded("last")) == 1, timeout=30, what="a job sent after them")
    assert len(tasks.recorded("paused")) == 6
    assert list(OperatorAction.objects.order_by("pk").values_list("action", "target", "count")) == [
        ("pause_queue", "default", 5),
        ("resume_queue", "default", 6),
    ]


@pytest.mark.delivery
def test_the_running_and_workers_pages_show_a_slow_job_and_those_waiting_behind_it(
    start_worker, live_broker, redis_url, client
):
    # Given a worker of one thread running a slow job, with three jobs taken behind it
    staff(client, "view_console_running", "view_console_workers")
    worker = start_worker(redis_url=redis_url, threads=1)
    live_broker.enqueue(tasks.slow.message("running", 8.0))
    worker.wait_for_log(r"job started actor=slow")
    for _ in range(3):
        live_broker.enqueue(tasks.noop.message("behind"))
    wait_until(
        lambda: (
            [len(state["running"]) for state in worker_states(live_broker)] == [1]
            and worker_states(live_broker)[0]["waiting_count"] == 3
        ),
        timeout=15,
        what="the worker to publish its slow job and three waiting",
    )
    [state] = worker_states(live_broker)
    host, pid = socket.gethostname(), state["pid"]
    assert parent_pid(pid) == worker.process.pid  # rundramatiq's worker process

    # When staff open the running page
    page = client.get("/admin/jobs/running/").content.decode()

    # Then the slow job is listed with its actor, queue, host, pid and attempt, the others apart
    assert re.search(
        rf'<td>slow</td><td>low</td><td>{re.escape(host)}</td><td class="number">{pid}</td>.*?'
        r'<td class="number">1</td>',
        page,
        re.DOTALL,
    )
    assert "Taken by a worker, waiting for a thread (3)" in page
    assert page.count("<td>noop</td><td>default</td>") == 3

    # And the workers page lists the process with its queues and threads, and its jobs done once they are
    wait_until(lambda: worker_states(live_broker)[0]["done"] == 4, timeout=30, what="the four jobs done")
    page = client.get("/admin/jobs/workers/").content.decode()
    assert re.search(
        rf'<td>{re.escape(host)}</td><td class="number">{pid}</td><td>default, low, mailers, urgent</td>\s*'
        r'<td class="number">1</td>.*?<td class="number">4</td>',
        page,
        re.DOTALL,
    )


@pytest.mark.delivery
def test_a_payment_retrying_in_twenty_minutes_shows_as_retrying_with_its_next_run(
    start_worker, live_broker, redis_url, client
):
    # Given a payment job whose gateway is down, retried twenty minutes after it failed
    staff(client, "view_console_queues")
    start_worker(redis_url=redis_url)
    live_broker.enqueue(tasks.gateway_down.message("payment"))
    wait_until(lambda: len(tasks.recorded("payment")) == 1, timeout=30, what="the first attempt")
    failed_at = tasks.recorded("payment")[0]["at"]

    # When the worker has taken the retry into its memory, to wait for its time there
    worker_id = None

    def held_by_the_worker() -> bool:
        nonlocal worker_id
        states = worker_states(live_broker)
        worker_id = states[0]["worker_id"] if states else None
        return [message.held_by for message in delayed_messages(live_broker, "urgent")] == [f"worker {worker_id}"]

    wait_until(held_by_the_worker, timeout=30, what="the retry held by the worker")

    # Then it counts as scheduled and retrying, not running, with its attempt, error and next run
    urgent = stats(live_broker, "urgent")
    assert (urgent.ready, urgent.scheduled, urgent.retrying, urgent.running) == (0, 1, 1, 0)
    [retry] = delayed_messages(live_broker, "urgent")
    assert (retry.actor_name, retry.queue_name, retry.attempt) == ("gateway_down", "urgent", 2)
    assert retry.error == "ConnectionError: the gateway is down"
    assert retry.eta.timestamp() > failed_at
    page = client.get(QUEUES).content.decode()
    assert re.search(
        r'<tr class="queue-urgent">.*?<td class="number ready">0</td><td class="number">1</td>\s*'
        r'<td class="number">1</td>',
        page,
        re.DOTALL,
    )
