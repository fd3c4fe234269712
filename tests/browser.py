"""Headless Debian Chromium driven by Playwright, shared by the browser tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: Playwright downloads nothing
CHROMIUM_FLAGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    # otherwise Chromium keeps trying to reach Google's servers
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT_MS = 300_000
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="needs Chromium at /usr/bin/chromium "
    "(apt-get install chromium chromium-driver; .ci/run does it)",
)


@contextmanager
def open_page() -> Iterator:
    """A fresh 1400x1000 page in headless Chromium, closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # a safety net for every wait, far above a step's time on a loaded machine
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()
