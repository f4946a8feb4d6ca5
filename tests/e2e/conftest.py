"""The console in a real headless Chromium: the browser, the web app's broker on the test Redis, a logged-in page."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import dramatiq
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.utils.module_loading import autodiscover_modules
from django_dramatiq.utils import load_middleware
from playwright.sync_api import expect, sync_playwright

from workers import queues
from workers.dramatiq_internals.consumers import GuardedRedisBroker

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
PASSWORD = "e2e-operator-password"


def chromium_path() -> str:
    """Debian's Chromium: Playwright's own browser download is not used, so the system's must be there."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not found:
        pytest.fail(
            "Chromium is not installed: the console's browser tests need it. "
            "Install it with `apt-get install -y chromium` (.ci/run does so).",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def browser_context():
    """One headless Chromium with a fresh profile for the session; each test opens its own page."""
    executable = chromium_path()
    with (
        pytest.MonkeyPatch.context() as patch,
        tempfile.TemporaryDirectory(prefix="e2e-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        # Playwright's sync API keeps an event loop in the test's thread, where Django then refuses ORM
        # calls (SynchronousOnlyOperation); the tests only set rows up and read them back, in order.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        # The admin's navigation sidebar folded, as the admin remembers it once folded: the pages get the width.
        context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        yield context
        context.close()


@pytest.fixture
def page(browser_context):
    """A new tab with no session cookie, closed after the test."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    tab.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)  # a worker publishes its state every 2 s, a page refreshes every second
    yield tab
    tab.close()


@pytest.fixture
def live_broker(redis_client, redis_url, monkeypatch) -> GuardedRedisBroker:
    """The web app's broker as `make run` builds it (Redis, the full middleware), on the test Redis.

    The test process runs on the StubBroker; the live server answers in a thread of it, so for
    the test the global broker and every actor's broker become this one: what the console reads,
    pauses, cancels or replays is what the real worker sees.
    """
    autodiscover_modules("tasks")  # every actor, as `runserver`'s start-up checks import them
    stub = dramatiq.get_broker()
    broker = GuardedRedisBroker(
        url=redis_url, middleware=[load_middleware(path) for path in settings.DRAMATIQ_BROKER["MIDDLEWARE"]]
    )
    for name in queues.names():
        broker.declare_queue(name)
    for actor in list(stub.actors.values()):
        monkeypatch.setattr(actor, "broker", broker)
        broker.declare_actor(actor)
    dramatiq.set_broker(broker)
    yield broker
    dramatiq.set_broker(stub)
    broker.close()


@pytest.fixture
def console(page, live_server, live_broker, settings):
    """The console's Overview, opened by an operator who logged in through the admin's login form.

    The operator is staff holding every permission of the job platform (and none of the shop's).
    """
    settings.CONSOLE_REFRESH_MS = 1000  # the live parts refresh fast, so the waits stay short
    operator = User.objects.create_user("operator", password=PASSWORD, is_staff=True)
    operator.user_permissions.set(Permission.objects.filter(content_type__app_label="workers"))
    page.goto(f"{live_server.url}/admin/jobs/dashboard/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Jobs console").wait_for()
    return page
