"""The integration pages in a real browser (Debian's chromium through Playwright): from the sidebar to a new
webhook, its secret shown once, the test button reaching a real receiver, the recent request on the page.
Screenshots go to /tmp/cyan-shots/ for a person to judge."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integrations.models import Integration
from tests.factories import UserFactory
from tests.support.browser import browser_tab, screenshot, sign_in
from tests.support.integrations_receiver import Step, allow_loopback, running_receiver

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page():
    with browser_tab(SHOTS) as tab:
        yield tab


def test_a_webhook_from_the_sidebar_to_a_passing_test(live_server, page, settings):
    allow_loopback(settings)
    UserFactory(email="ada@example.com")
    base = live_server.url
    with running_receiver() as rx:
        rx.script("/readings", Step(200, '{"stored": true}'))
        sign_in(page, base, "ada@example.com")
        page.get_by_role("link", name="Integrations").click()
        page.wait_for_url(f"{base}/integrations/")
        screenshot(page, SHOTS, "integrations-empty")
        page.get_by_role("link", name="Create a webhook").click()
        page.get_by_label("Event name (prefix)").fill("temp")
        page.locator("#id_url").fill(rx.url("/readings"))
        page.get_by_label("Request body").select_option("json")
        page.get_by_label("Body template").fill('{"value": "{{PARTICLE_EVENT_VALUE}}"}')
        screenshot(page, SHOTS, "integrations-new")
        page.get_by_role("button", name="Create webhook").click()
        hook = Integration.objects.get()
        page.wait_for_url(f"{base}/integrations/{hook.id}/")
        assert page.locator("[data-secret]").input_value() == hook.signing_secret
        page.get_by_role("button", name="Send a test event").click()
        page.wait_for_selector('[data-test-result="pass"]')
        assert len(rx.at("/readings")) == 1
        assert page.locator("[data-secret]").count() == 0  # shown once
        screenshot(page, SHOTS, "integrations-detail")
