"""What the operator sees: table cells by row and column names, and screenshots for the README."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from playwright.sync_api import Locator, Page

#: Where the pictures go: var/screenshots, or the README's docs/screenshots with
#: `make e2e SCREENSHOTS_DIR=docs/screenshots`, so that a test run leaves the checkout as it was.
SCREENSHOTS = Path(settings.BASE_DIR) / os.environ.get("SCREENSHOTS_DIR", Path(settings.VAR_DIR) / "screenshots")


def cell(page: Page, row: str | None, column: str, *, table: Locator | None = None) -> Locator:
    """The cells in the column headed ``column`` of the rows where a cell reads ``row`` (of every row for None).

    Waits for the table; the cell is then resolved afresh on every use, so it follows the
    console's in-place refreshes.
    """
    table = table or page.locator("#console-live table").filter(has=page.get_by_role("columnheader", name=column))
    table.first.wait_for()
    headers = [text.strip() for text in table.first.get_by_role("columnheader").all_text_contents()]
    line = table.first.locator("tbody tr")
    if row is not None:
        line = line.filter(has=page.get_by_role("cell", name=row, exact=True))
    return line.locator(f"td:nth-child({headers.index(column) + 1})")


def screenshot(page: Page, name: str) -> None:
    """Save the viewport as <name>.png in ``SCREENSHOTS``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")
