"""Browser tests: Debian's chromium driven by Playwright against a live server.

The server runs the real app in a thread on 127.0.0.1 over ``live_app`` (real
commits), reached as ``localhost``: a name, and a secure context, so passkeys
work, and ``RECOVERY_BASE_URL`` says the same. No browser is ever downloaded:
``/usr/bin/chromium`` is launched.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "test-results"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def live_server(live_app):
    """Base URL of the app served on a free loopback port, by the name ``localhost``."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    base_url = f"http://localhost:{server.server_port}"
    live_app.config["RECOVERY_BASE_URL"] = base_url  # links in e-mails and the passkeys' origin
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run scripts/setup.sh test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser):
    """Fresh browser contexts (each is a separate cookie jar), closed afterwards."""
    contexts = []

    def make(locale: str = "ja-JP", **kwargs):
        context = browser.new_context(locale=locale, extra_http_headers={"Accept-Language": locale}, **kwargs)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
