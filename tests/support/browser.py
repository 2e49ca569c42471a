"""Shared Playwright setup for the console's browser tests: Debian's chromium, headless, with the flags this
machine needs (its closed network refuses Chromium's background connections)."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

from tests.support.env import chromium_path, need

# Playwright's sync API runs an event loop in this thread; the ORM calls made between browser steps are
# synchronous and safe, but Django refuses them inside a running loop unless told otherwise.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
NO_CHROMIUM = "chromium is not installed (apt-get install chromium)"


def sign_in(page, base: str, email: str) -> None:
    """Sign in through the login form with the factories' password; lands on the products page."""
    from tests.factories import PASSWORD

    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/products/")


def screenshot(page, shots: Path, name: str) -> None:
    """A full-page PNG of the tab, for a person to look at (not asserted)."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


# Anything but this machine: Cyan serves every script, style, font and image itself, so a page that reaches
# out is broken on an offline install (and leaks its visitors to a third party on an online one).
OFF_MACHINE = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$))", re.I)


@contextmanager
def browser_tab(shots: Path, *, timeout_ms: int = 10_000, **context_options):
    """A fresh tab; fails the test afterwards if any page raised a JavaScript error, broke the Content Security
    Policy, or asked for anything off this machine (those requests are also refused)."""
    need(chromium_path() is not None, NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    policy: list[str] = []
    outside: list[str] = []

    def refuse(route):
        outside.append(route.request.url)
        route.abort()

    def console_line(message):
        if "Content Security Policy" in message.text:
            policy.append(message.text)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 860}, **context_options)
        context.set_default_timeout(timeout_ms)
        context.route(OFF_MACHINE, refuse)
        tab = context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("console", console_line)
        yield tab
        context.close()
        browser.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not policy, f"Content Security Policy violations: {policy}"
    assert not outside, f"requests off this machine: {outside}"
