"""The API documentation pages work on an offline install: /api/docs/ (Swagger UI) and /api/redoc/ render the
schema in Chromium with every script, style and font served by Cyan (tests/support/browser.py refuses and
reports any request off this machine, and any Content Security Policy violation)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.browser import OFF_MACHINE, browser_tab, screenshot

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots-docs"))
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_off_machine_pattern():
    assert OFF_MACHINE.match("https://fonts.googleapis.com/css?family=Montserrat")
    assert OFF_MACHINE.match("http://127.0.0.1.example.com/x")
    assert OFF_MACHINE.match("wss://cdn.example/x")
    assert not OFF_MACHINE.match("http://127.0.0.1:8123/api/redoc/")
    assert not OFF_MACHINE.match("http://localhost/static/x.js")
    assert not OFF_MACHINE.match("data:image/svg+xml;base64,AAAA")


def test_swagger_ui_renders_offline(live_server):
    from playwright.sync_api import expect

    with browser_tab(SHOTS, timeout_ms=60_000) as page:
        page.goto(f"{live_server.url}/api/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Cyan", timeout=60_000)
        expect(page.locator(".opblock-tag", has_text="devices").first).to_be_visible(timeout=60_000)
        screenshot(page, SHOTS, "swagger")


def test_redoc_renders_offline(live_server):
    from playwright.sync_api import expect

    with browser_tab(SHOTS, timeout_ms=60_000) as page:  # a 1 MB bundle, on a busy 2-core machine
        page.goto(f"{live_server.url}/api/redoc/")
        expect(page.locator("h1").first).to_contain_text("Cyan", timeout=60_000)
        expect(page.locator("[data-section-id^='tag/']").first).to_be_attached(timeout=60_000)
        screenshot(page, SHOTS, "redoc")


def test_a_page_that_reaches_off_machine_fails_the_browser_check(live_server):
    """The check itself can fail: a page asking for a font from the internet is reported."""
    with pytest.raises(AssertionError, match="requests off this machine"):
        with browser_tab(SHOTS) as page:
            page.set_content('<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">')
            page.wait_for_timeout(300)
