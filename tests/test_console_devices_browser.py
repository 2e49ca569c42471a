"""The device pages in a real browser (Debian's chromium, driven by Playwright's sync API): import a file and
watch a real Celery worker's progress and report, search and sort the list, add two devices to a group, edit
a device's notes, approve a quarantined device. Screenshots go to /tmp/cyan-shots-devices/."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from console.scoping import Principal
from devices.services import claims, importing
from devices.services import groups as group_services
from devices.models import Device, ImportJob, SimUsage
from products.models import DeviceGroup, Product
from tests.support.browser import browser_tab, screenshot, sign_in
from tests.support.worker import running_celery_worker
from tests.support.fleet import ids, manufacture
from tests.factories import UserFactory, make_org, make_product, seat
from tests.support.presence import connect

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots-devices"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page():
    with browser_tab(SHOTS, timeout_ms=15_000, accept_downloads=True) as tab:
        yield tab


@pytest.fixture
def worker(transactional_db, live_server):
    """A real Celery worker in this process (solo pool, the embedded Redis broker), as tests/test_worker.py.

    The test database is SQLite's shared-cache in-memory database, where a reader that meets another
    connection's write lock fails at once with "database table is locked" (SQLITE_LOCKED: no busy timeout
    applies) — so the live server's page polls, reading while the worker's import commits, would fail now and
    then. Read-uncommitted connections take no read locks in shared-cache mode; production (a file in WAL mode,
    or PostgreSQL) has no such lock."""
    from django.db import connections
    from django.db.backends.signals import connection_created

    def dirty_reads(sender, connection, **kwargs):
        if connection.vendor == "sqlite":
            connection.cursor().execute("PRAGMA read_uncommitted = 1")

    connection_created.connect(dirty_reads)
    # Connections opened before now: this thread's, and the one the live server thread may share (it keeps
    # the connection it was given open across tests).
    shared = getattr(getattr(live_server, "thread", None), "connections_override", {}) or {}
    for conn in [*connections.all(), *shared.values()]:
        if conn.vendor == "sqlite" and conn.connection is not None:
            dirty_reads(None, conn)
    try:
        with running_celery_worker():
            yield
    finally:
        connection_created.disconnect(dirty_reads)


def shot(page, name: str) -> None:
    screenshot(page, SHOTS, name)


def setup_product():
    owner = UserFactory(email="dana@example.com", first_name="Dana")
    org = make_org(owner, "Acme Devices")
    product = make_product(org, name="Asset Trackers", platform_id=13)
    return owner, org, product


def add_fleet(owner, product, count: int, names: list[str] | None = None) -> list[str]:
    device_ids = ids(manufacture(13, count))
    importing.device_import(principal=Principal.for_user(owner), product=product, values=list(enumerate(device_ids, 1)))
    now = timezone.now()
    for n, device_id in enumerate(device_ids):
        Device.objects.filter(pk=device_id).update(
            name=(names[n] if names else f"tracker-{n:02d}"), firmware_version=3 + n % 3,
            system_firmware_version="6.1.1", last_heard=None if n % 7 == 6 else now - timedelta(minutes=37 * n ** 2),
            last_ip_address=f"198.51.100.{n + 10}")
    return device_ids


def test_import_a_file_and_watch_the_worker_report(live_server, page, worker, tmp_path):
    from playwright.sync_api import expect

    base = live_server.url
    owner, org, product = setup_product()
    good = ids(manufacture(13, 40))
    argon = ids(manufacture(12, 1))[0]
    serial = Device.objects.get(pk=good[39]).serial_number  # the 40th device, given by its serial number
    lines = good[:39] + ["# from order 4711", serial, "not-a-device", argon, good[0]]
    upload = tmp_path / "order-4711 devices.txt"
    upload.write_text("\n".join(lines) + "\n")

    sign_in(page, base, owner.email)
    page.goto(f"{base}/products/{product.slug}/devices/")
    expect(page.get_by_role("heading", name="No devices yet")).to_be_visible()
    shot(page, "01-devices-empty")
    page.get_by_role("link", name="Import devices").first.click()
    page.wait_for_url(f"{base}/products/{product.slug}/devices/import/")
    page.get_by_label("File").set_input_files(str(upload))
    expect(page.get_by_label("Import and activate SIM cards")).to_be_checked()
    shot(page, "02-import-form")
    page.get_by_role("button", name="Start import").click()
    page.wait_for_url(re.compile(rf"/products/{product.slug}/devices/import/\d+/$"))
    job = ImportJob.objects.get(product=product)

    # The worker runs the job; the page polls until the report replaces the progress bar.
    expect(page.locator('#import-status[data-state="done"]')).to_be_visible(timeout=30_000)
    assert ImportJob.objects.get(pk=job.pk).state == ImportJob.State.DONE
    expect(page.locator('[data-verdict="added"] .verdict-count')).to_have_text("40")
    expect(page.locator('[data-verdict="wrong_platform"] .verdict-count')).to_have_text("1")
    expect(page.locator('[data-verdict="invalid"] .verdict-count')).to_have_text("1")
    expect(page.locator('[data-verdict="duplicate"] .verdict-count')).to_have_text("1")
    rejected = page.locator(".table-rejected tbody tr")
    expect(rejected).to_have_count(3)
    expect(page.locator('tr[data-line="42"]')).to_contain_text("not-a-device")
    shot(page, "03-import-report")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download report (CSV)").click()
    report = Path(download.value.path()).read_text()
    assert report.startswith("line,value,device_id,verdict,reason") and f"41,{serial},{good[39]},added," in report
    assert Product.objects.get(pk=product.pk).device_count == 40

    page.get_by_role("link", name="View devices").click()
    expect(page.locator("tr[data-device]")).to_have_count(25)
    expect(page.locator(".table-foot")).to_contain_text("1–25 of 40")
    shot(page, "04-devices-after-import")


def test_search_sort_select_two_and_add_them_to_a_group(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    owner, org, product = setup_product()
    names = ["north-gate", "south-gate", "dock-7", "dock-8", "forklift-a", "forklift-b", "truck-11", "truck-12",
             "yard-east", "yard-west", "office", "spare"]
    device_ids = add_fleet(owner, product, len(names), names)
    Device.objects.filter(pk__in=device_ids[:5]).update(online=True)
    Device.objects.filter(pk=device_ids[2]).update(development=True, owner=owner)
    group_services.group_create(principal=Principal.for_user(owner), product=product, name="warehouse",
                                color="#f59e0b", description="Inside the warehouse")
    group_services.devices_batch_groups(principal=Principal.for_user(owner), product=product, device_ids=device_ids[2:4],
                                  add=["warehouse"])
    today = timezone.now().date()
    for n, sim in enumerate(product.sims.all()[:6]):
        for day in range(1, today.day + 1):
            SimUsage.objects.create(sim=sim, date=today.replace(day=day), mbs_used=f"{(n + 1) * (1 + (day * 7) % 5) / 10:.3f}")

    sign_in(page, base, owner.email)
    page.goto(f"{base}/products/{product.slug}/")
    page.locator(".sidebar").get_by_role("link", name="Devices", exact=True).click()
    page.wait_for_url(f"{base}/products/{product.slug}/devices/")
    expect(page.locator("tr[data-device]")).to_have_count(12)
    shot(page, "05-device-list")

    # Search (htmx swaps the results and pushes the URL).
    page.get_by_label("Search devices").fill("gate")
    expect(page.locator("tr[data-device]")).to_have_count(2)
    expect(page.locator(".filter-note")).to_contain_text("name contains gate")
    page.wait_for_url(re.compile(r"\?q=gate"))
    shot(page, "06-device-search")
    page.get_by_label("Search devices").fill("")
    expect(page.locator("tr[data-device]")).to_have_count(12)

    # Sort by name, then flip it.
    page.locator("th.sortable a[data-sort=name]").click()
    page.wait_for_url(re.compile(r"sort=name"))
    expect(page.locator("tr[data-device] .cell-title").first).to_have_text("dock-7")
    page.locator("th.sortable a[data-sort=name]").click()
    page.wait_for_url(re.compile(r"sort=name&dir=desc"))
    expect(page.locator("tr[data-device] .cell-title").first).to_have_text("yard-west")
    expect(page.locator("th.is-sorted")).to_have_attribute("aria-sort", "descending")

    # Tick two rows and add them to a new group.
    add = page.get_by_role("button", name="Add to group")
    expect(add).to_be_disabled()
    page.get_by_label("Select truck-11").check()
    page.get_by_label("Select truck-12").check()
    expect(page.locator("[data-selected-label]")).to_have_text("2 selected")
    shot(page, "07-two-selected")
    add.click()
    dialog = page.locator("#bulk-add-dialog")
    expect(dialog).to_contain_text("2 selected devices")
    dialog.get_by_label("Group").fill("fleet-trucks")
    shot(page, "08-add-to-group-dialog")
    dialog.get_by_role("button", name="Add to group").click()
    expect(page.locator(".flash-success")).to_contain_text("Added 2 devices to the group fleet-trucks")
    page.wait_for_url(re.compile(r"sort=name&dir=desc"))  # back to the same view of the list
    group = DeviceGroup.objects.get(product=product, name="fleet-trucks")
    assert group.device_count == 2
    assert set(group.devices.values_list("name", flat=True)) == {"truck-11", "truck-12"}
    expect(page.locator('tr[data-device] .gchip', has_text="fleet-trucks")).to_have_count(2)
    shot(page, "09-after-add-to-group")

    # Filter by the group from the Groups page.
    page.locator(".sidebar").get_by_role("link", name="Groups").click()
    expect(page.locator('tr[data-group="fleet-trucks"]')).to_contain_text("2")
    shot(page, "10-groups")
    page.get_by_role("link", name="fleet-trucks").first.click()
    expect(page.locator("tr[data-device]")).to_have_count(2)
    shot(page, "11-list-filtered-by-group")

    # Select all on the page, then remove one device from the product (confirmed).
    page.get_by_label("Select all devices on this page").check()
    expect(page.locator("[data-selected-label]")).to_have_text("2 selected")
    page.get_by_label("Select all devices on this page").uncheck()
    page.get_by_label("Select truck-12").check()
    page.get_by_role("button", name="Remove from product").click()
    confirm = page.locator("#bulk-remove-dialog")
    expect(confirm).to_contain_text("Remove 1 device from Asset Trackers?")
    confirm.get_by_role("button", name="Remove from product").click()
    expect(page.locator(".flash-success")).to_contain_text("Removed 1 device")
    assert Device.objects.get(name="truck-12").product_id is None

    page.locator(".sidebar").get_by_role("link", name="SIM cards").click()
    expect(page.locator("tr[data-sim]")).to_have_count(12)
    shot(page, "12-sims")
    page.locator(".sidebar").get_by_role("link", name="Customers").click()
    page.get_by_role("button", name="New customer").first.click()
    page.locator("#customer-new-dialog").get_by_label("Email").fill("ops@example.com")
    page.locator("#customer-new-dialog").get_by_role("textbox", name="Password").fill("ops-password-1")
    page.locator("#customer-new-dialog").get_by_role("button", name="Create customer").click()
    expect(page.locator('tr[data-customer="ops@example.com"]')).to_be_visible()
    shot(page, "13-customers")


def test_open_a_device_and_edit_its_notes(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    owner, org, product = setup_product()
    developer = UserFactory(email="dev@example.com")
    seat(product, developer, "developer")
    device_ids = add_fleet(owner, product, 3)
    group_services.devices_batch_groups(principal=Principal.for_user(owner), product=product, device_ids=device_ids[:1],
                                  add=["field-test"])

    sign_in(page, base, developer.email)
    page.goto(f"{base}/products/{product.slug}/devices/?sort=name")
    page.get_by_role("link", name="tracker-00").click()
    page.wait_for_url(f"{base}/products/{product.slug}/devices/{device_ids[0]}/")
    expect(page.get_by_role("heading", name="tracker-00")).to_be_visible()
    page.get_by_role("textbox", name="Notes").fill("Mounted on pallet 12; battery swapped in May.")
    page.get_by_role("button", name="Save notes").click()
    expect(page.locator(".flash-success")).to_contain_text("Notes saved")
    expect(page.get_by_role("textbox", name="Notes")).to_have_value("Mounted on pallet 12; battery swapped in May.")
    assert Device.objects.get(pk=device_ids[0]).notes == "Mounted on pallet 12; battery swapped in May."
    # The development switch saves on change; the history records both.
    # devices.js (deferred) submits the switch on change: wait until the page after the notes form has it.
    page.wait_for_load_state("load")
    page.get_by_label("Mark as development device").check()
    expect(page.locator(".flash-success")).to_contain_text("Development setting saved")
    assert Device.objects.get(pk=device_ids[0]).development
    # The group added in bulk above is in the device's history too: three entries, newest first.
    expect(page.locator(".table-history tbody tr")).to_have_count(3)
    expect(page.locator(".table-history tbody tr").last).to_contain_text("device.groups")
    expect(page.locator(".table-history tbody tr").first).to_contain_text("development")
    page.get_by_role("button", name="Rename").click()
    page.locator("#name-dialog").get_by_label("Name").fill("pallet 12")
    page.locator("#name-dialog").get_by_role("button", name="Save name").click()
    expect(page.locator("#name-dialog .field-error")).to_contain_text("letters, digits, dashes")
    page.locator("#name-dialog").get_by_label("Name").fill("pallet-12")
    page.locator("#name-dialog").get_by_role("button", name="Save name").click()
    expect(page.get_by_role("heading", name="pallet-12")).to_be_visible()
    shot(page, "14-device-page")


def test_approve_a_quarantined_device_and_the_sandbox_list(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    owner, org, product = setup_product()
    add_fleet(owner, product, 2)
    waiting = ids(manufacture(13, 2))
    Device.objects.filter(pk__in=waiting).update(product=product, quarantined=True, online=True,
                                                 last_ip_address="203.0.113.9")

    sign_in(page, base, owner.email)
    page.goto(f"{base}/products/{product.slug}/devices/")
    expect(page.locator('[data-tab="quarantine"] .count')).to_have_text("2")
    page.locator('[data-tab="quarantine"]').click()
    expect(page.locator("tr[data-device]")).to_have_count(2)
    shot(page, "15-quarantine")
    page.locator(f'tr[data-device="{waiting[0]}"]').get_by_role("button", name="Approve").click()
    expect(page.locator(".flash-success")).to_contain_text("was approved")
    expect(page.locator("tr[data-device]")).to_have_count(1)
    approved = Device.objects.get(pk=waiting[0])
    assert not approved.quarantined and Product.objects.get(pk=product.pk).device_count == 3
    page.locator(f'tr[data-device="{waiting[1]}"]').get_by_role("button", name="Deny").click()
    expect(page.get_by_role("heading", name="Nothing in quarantine")).to_be_visible()
    assert Device.objects.get(pk=waiting[1]).denied

    # The sandbox device list: personal and product devices claimed to the user, and the details box.
    for device_id in ids(manufacture(12, 2)):
        connect(device_id)  # claiming by id needs the device online
        claims.device_claim(principal=Principal.for_user(owner), device_id=device_id)
    Device.objects.filter(pk=waiting[0]).update(owner=owner)
    page.locator("summary.switcher-button").click()
    page.locator('button[data-account="sandbox"]').click()
    page.locator(".sidebar").get_by_role("link", name="Devices", exact=True).click()
    page.wait_for_url(f"{base}/devices/")
    expect(page.locator("tr[data-device]")).to_have_count(3)
    expect(page.locator('[data-detail="personal"]')).to_have_text("2")
    expect(page.locator('[data-detail="product"]')).to_have_text("1")
    shot(page, "16-sandbox-devices")
    page.get_by_label("Show sandbox devices only").check()
    page.wait_for_url(re.compile(r"sandbox_only=1"))
    expect(page.locator("tr[data-device]")).to_have_count(2)

    # Someone asks for one of the personal devices; the owner approves it on the same page.
    personal = Device.objects.filter(owner=owner, product__isnull=True).order_by("id").first()
    rival = UserFactory(email="rival@example.com")
    connect(personal.id)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(rival), device_id=personal.id, request_transfer=True)
    page.goto(f"{base}/devices/")
    request_row = page.locator("tr[data-transfer]")
    expect(request_row).to_have_count(1)
    expect(request_row).to_contain_text("rival@example.com")
    shot(page, "17-transfer-request")
    request_row.get_by_role("button", name="Approve").click()
    expect(page.locator(".flash-success")).to_contain_text("is now claimed to rival@example.com")
    expect(page.locator("[data-transfers]")).to_have_count(0)
    expect(page.locator("tr[data-device]")).to_have_count(2)
    assert Device.objects.get(pk=personal.id).owner == rival


def test_a_device_opens_from_its_id_or_anywhere_on_its_row(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    owner, org, product = setup_product()
    first, second = add_fleet(owner, product, 2)
    sign_in(page, base, owner.email)
    listing = f"{base}/products/{product.slug}/devices/"

    page.goto(listing)
    page.locator(f'tr[data-device="{first}"]').get_by_role("link", name=first).click()
    page.wait_for_url(f"{base}/products/{product.slug}/devices/{first}/")

    page.goto(listing)
    page.locator(f'tr[data-device="{second}"] td.col-owner').click()  # a plain cell: the owner's ("none")
    page.wait_for_url(f"{base}/products/{product.slug}/devices/{second}/")

    page.goto(listing)  # ticking a row's box selects it and stays on the list
    page.locator(f'tr[data-device="{first}"] [data-row-check]').check()
    expect(page.locator(f'tr[data-device="{first}"]')).to_have_class(re.compile("is-selected"))
    assert page.url == listing
