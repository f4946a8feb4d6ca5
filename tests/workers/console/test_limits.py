"""The console's limits page: per limited actor and key, running, deferred and the starts of the period."""

from __future__ import annotations

import re

import dramatiq
import pytest
from django.contrib.auth.models import Permission, User

from tests.support import flow_tasks
from tests.workers.test_flow_limits import recorded
from workers.dramatiq_internals.consumers import GuardedRedisBroker
from workers.middleware.limits import FlowControl
from workers.testing import wait_until

pytestmark = pytest.mark.django_db

LIMITS = "/admin/jobs/limits/"


def staff(client, *codenames: str) -> User:
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def test_the_limits_page_needs_the_queues_permission(client):
    staff(client, "view_deadletter")
    assert client.get(LIMITS).status_code == 403


@pytest.mark.delivery
def test_the_limits_page_shows_each_key_with_its_deferrals(client, start_worker, redis_client, redis_url):
    # Given the console reading the Redis a worker runs limited jobs from
    broker = GuardedRedisBroker(url=redis_url, middleware=[FlowControl()])
    broker.declare_actor(flow_tasks.two_per_group)
    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    try:
        staff(client, "view_console_queues")
        start_worker(redis_url=redis_url, threads=4)

        # When six jobs of one group, limited to two at once, have run
        for _ in range(6):
            broker.enqueue(flow_tasks.two_per_group.message("runs", "group-<b>", 0.3))
        wait_until(lambda: len(recorded(redis_url, "runs")) == 6, timeout=30, what="six runs")
        page = client.get(LIMITS).content.decode()
    finally:
        dramatiq.set_broker(previous)

    # Then the page lists the actor's limit, and its key (escaped) with nothing running now and the deferrals made
    assert "two_per_group" in page and "2 running" in page and "_group(arguments)" in page
    row = re.search(r"<code>group-&lt;b&gt;</code></td><td>2 running</td>(.*?)</tr>", page, re.S).group(1)
    running, in_window, deferred_now, deferrals = re.findall(r'<td class="number">([^<]*)</td>', row)
    assert (running, in_window, deferred_now) == ("0", "–", "0")
    assert int(deferrals) >= 1
