"""Report tests run in Berlin time, whose clocks change on the last Sundays of March and October."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _berlin(settings) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    settings.REPORT_RECIPIENTS = ["owner@example.com", "accounts@example.com"]
