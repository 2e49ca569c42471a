"""The console's live event log in Chromium, over the real ASGI server: a product's log shows device events
as they are published, filtered by prefix and by device; Pause holds rows back and Resume shows them; the
sandbox log shows the user's own events; another tenant's log is the 404 page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devices import events
from devices.models import Device
from tests.factories import UserFactory, make_org, make_product
from tests.support.browser import browser_tab, sign_in
from tests.support.fleet import import_devices
from tests.support.presence import clear_presence

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots-events"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page():
    clear_presence()
    with browser_tab(SHOTS, timeout_ms=15_000) as tab:
        yield tab
    clear_presence()


def publish(device_id: str, name: str, data: str) -> None:
    events.events_publish([events.event_make(device_id=device_id, name=name, data=data)])


def rows(page) -> list[tuple[str, str]]:
    return [(r.get_attribute("data-event"), r.locator("td.event-data").inner_text())
            for r in page.locator("[data-events-log] tbody tr").all()]


def live(page) -> None:
    page.wait_for_load_state("load")
    page.locator("[data-events-status]", has_text="Live").wait_for()


def test_a_products_live_log_with_filters_and_pause(asgi_url, page):
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers", platform_id=13)
    a, b = import_devices(product, 2)
    sign_in(page, asgi_url, owner.email)
    page.goto(f"{asgi_url}/products/{product.slug}/")
    page.get_by_role("link", name="Events").click()
    live(page)
    publish(a, "temp", "21.5")
    publish(b, "humidity", "40")
    page.locator("[data-events-log] tbody tr").nth(1).wait_for()
    assert rows(page) == [("humidity", "40"), ("temp", "21.5")]  # newest first
    page.screenshot(path=str(SHOTS / "product-events.png"), full_page=True)

    page.get_by_role("button", name="Pause").click()
    publish(a, "temp", "22.0")
    page.locator("[data-events-status]", has_text="1 waiting").wait_for()
    assert len(rows(page)) == 2
    page.get_by_role("button", name="Resume").click()
    assert rows(page)[0] == ("temp", "22.0")

    page.get_by_placeholder("Event name starts with…").fill("te")
    page.get_by_placeholder("Only device (ID)").fill(a)
    page.get_by_role("button", name="Filter").click()
    live(page)
    publish(b, "temp", "other device")
    publish(a, "humidity", "other name")
    publish(a, "temperature", "this one")
    page.locator("[data-events-log] tbody tr").first.wait_for()
    assert rows(page) == [("temperature", "this one")]


def test_the_sandbox_log_and_another_tenants_log(asgi_url, page):
    me, other = UserFactory(email="me@example.com"), UserFactory(email="other@example.com")
    theirs = make_product(make_org(other, "Other"), name="Theirs", platform_id=13)
    (mine,) = import_devices(theirs, 1)
    Device.objects.filter(pk=mine).update(owner=me)  # a device claimed to me in someone else's product
    sign_in(page, asgi_url, me.email)
    page.goto(f"{asgi_url}/events/")
    live(page)
    publish(mine, "mine/ping", "hello")
    page.locator("[data-events-log] tbody tr").first.wait_for()
    assert rows(page) == [("mine/ping", "hello")]
    response = page.goto(f"{asgi_url}/products/{theirs.slug}/events/")
    assert response.status == 404
    stream = page.goto(f"{asgi_url}/products/{theirs.slug}/events/stream")
    assert stream.status == 404
