"""What every page of the site brings along: the favicon browsers ask for, and log lines with one clock."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_the_favicon_browsers_ask_for_is_there_not_a_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.content
    assert "max-age=86400" in response["Cache-Control"]


def log_line(**environ: str) -> str:
    """What a process of the site logs for one message, with these variables set."""
    code = (
        "import django, logging; django.setup(); logging.getLogger('orders').warning('stock is low'); "
        "logging.getLogger('django.server').warning('\"GET /nowhere HTTP/1.1\" 404 179')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **environ}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True
    )
    return done.stderr


def test_under_honcho_each_log_line_carries_no_clock_of_its_own():
    # Given a process started as the Procfile starts it, then one started on its own
    under_honcho = log_line(LOG_TIMESTAMPS="false")
    alone = log_line()

    # Then the first leaves the time to honcho's prefix, also for runserver's request lines, and
    # the second starts each line with its time
    assert under_honcho.splitlines() == [
        "WARNING orders stock is low",
        'WARNING django.server "GET /nowhere HTTP/1.1" 404 179',
    ]
    assert [line.split(" ", 2)[2] for line in alone.splitlines()] == under_honcho.splitlines()
    assert all(line[:4].isdigit() for line in alone.splitlines())
