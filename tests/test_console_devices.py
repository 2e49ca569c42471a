"""The console's device pages through Django's test client: the product device list (search, filters, sort,
pages, quarantine, bulk actions, CSV export), one device, imports, groups, SIM cards, customers and the
sandbox device list. Tenant isolation (outsiders get 404 everywhere), role checks (View-only sees no write
control, and its POSTs are refused with 403 and change nothing), and a fixed number of queries per list."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.test import Client

from console.models import AccessToken, AuditEntry
from console.scoping import Principal
from devices.services import claims, importing
from devices.services import groups as group_services
from devices.services.customers import customer_create
from devices.services.jobs import import_job_run
from devices.models import Customer, Device, ImportJob, SimCard
from products.models import DeviceGroup, Product
from tests.support.fleet import ids, import_named_devices, manufacture
from tests.factories import UserFactory, make_product
from tests.support.console import signed_in
from tests.support.presence import connect

pytestmark = pytest.mark.django_db


def rows(response) -> list[str]:
    """Device ids of the table rows, in order."""
    return re.findall(r'<tr data-device="([0-9a-f]{24})"', response.content.decode())


def list_url(product, **params) -> str:
    from urllib.parse import urlencode

    base = f"/products/{product.slug}/devices/"
    return f"{base}?{urlencode(params, doseq=True)}" if params else base


# --- the device list ---------------------------------------------------------------------------------------


def test_list_pages_sorts_and_shows_particle_columns(cast):
    device_ids = import_named_devices(cast, 30)
    Device.objects.filter(pk=device_ids[3]).update(online=True, development=True)
    client = signed_in(cast.developer)

    r = client.get(list_url(cast.product, sort="name"))
    html = r.content.decode()
    assert r.status_code == 200
    assert rows(r) == device_ids[:25]
    assert "1–25 of 30" in html and 'aria-current="page">1<' in html and "?sort=name&amp;page=2" in html
    assert 'class="dot dot-online"' in html and "badge-dev" in html  # status dot, development badge
    assert ">Device ID<" in html and ">Groups<" in html and ">Owner<" in html and ">Firmware<" in html
    assert rows(client.get(list_url(cast.product, sort="name", page=2))) == device_ids[25:]
    assert len(rows(client.get(list_url(cast.product, per_page=50)))) == 30
    assert rows(client.get(list_url(cast.product, sort="name", dir="desc")))[:2] == [device_ids[29], device_ids[28]]
    by_id = rows(client.get(list_url(cast.product, sort="id", per_page=50)))
    assert by_id == sorted(device_ids)
    by_fw = rows(client.get(list_url(cast.product, sort="firmware", dir="desc", per_page=50)))
    versions = list(Device.objects.filter(pk__in=by_fw).values_list("pk", "firmware_version"))
    order = {pk: v for pk, v in versions}
    assert [order[pk] for pk in by_fw] == sorted(order.values(), reverse=True)
    # A bad bookmark falls back to the defaults instead of an error page.
    assert client.get(list_url(cast.product, sort="nope", dir="sideways", page="x", per_page="7")).status_code == 200


def test_search_guesses_the_field_and_can_be_told(cast):
    device_ids = import_named_devices(cast, 12)
    device = Device.objects.get(pk=device_ids[5])
    client = signed_in(cast.viewer)

    r = client.get(list_url(cast.product, q="dev-05"))
    assert rows(r) == [device.id] and "<strong>name</strong> contains" in r.content.decode()
    assert set(rows(client.get(list_url(cast.product, q="dev-0")))) == set(device_ids[:10])
    r = client.get(list_url(cast.product, q=device.id[:10]))
    assert rows(r) == [device.id] and "<strong>device ID</strong> starts with" in r.content.decode()
    r = client.get(list_url(cast.product, q=device.serial_number[:-2]))
    assert device.id in rows(r) and "<strong>serial number</strong>" in r.content.decode()
    # Told explicitly, the same text searches another field.
    assert rows(client.get(list_url(cast.product, q=device.id[:10], by="name"))) == []
    r = client.get(list_url(cast.product, q="zzz-nothing"))
    assert rows(r) == [] and "No devices match" in r.content.decode()


def test_group_filter_and_the_htmx_partial(cast):
    device_ids = import_named_devices(cast, 8)
    owner = Principal.for_user(cast.owner)
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[:3], add=["beta"])
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[2:5], add=["field-test"])
    client = signed_in(cast.viewer)

    assert set(rows(client.get(list_url(cast.product, groups="beta")))) == set(device_ids[:3])
    both = rows(client.get(list_url(cast.product, groups=["beta", "field-test"])))
    assert set(both) == set(device_ids[:5])  # any of the groups
    r = client.get(list_url(cast.product, groups="beta"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="device-results")
    html = r.content.decode()
    assert html.lstrip().startswith("<div id=\"device-results\"") and "<html" not in html
    assert len(rows(r)) == 3 and "Stop filtering by beta" in html
    # Each row shows its group chips.
    full = client.get(list_url(cast.product, sort="name")).content.decode()
    row2 = full.split(f'data-device="{device_ids[2]}"')[1].split("</tr>")[0]
    assert "beta" in row2 and "field-test" in row2


def test_quarantine_tab_approve_and_deny(cast):
    import_named_devices(cast, 2)
    waiting = ids(manufacture(13, 2))
    Device.objects.filter(pk__in=waiting).update(product=cast.product, quarantined=True)
    client = signed_in(cast.developer)

    r = client.get(list_url(cast.product, quarantined="true"))
    html = r.content.decode()
    assert set(rows(r)) == set(waiting) and "Approve" in html and "Deny" in html
    assert 'data-tab="quarantine">Quarantine <span class="count count-warn">2' in html
    assert not set(waiting) & set(rows(client.get(list_url(cast.product))))

    r = client.post(f"/products/{cast.product.slug}/devices/{waiting[0]}/approve/",
                    {"next": list_url(cast.product, quarantined="true")})
    assert r.status_code == 302 and r["Location"] == list_url(cast.product, quarantined="true")
    approved = Device.objects.get(pk=waiting[0])
    assert not approved.quarantined and approved.product_id == cast.product.pk
    assert Product.objects.get(pk=cast.product.pk).device_count == 3

    client.post(f"/products/{cast.product.slug}/devices/{waiting[1]}/deny/")
    denied = Device.objects.get(pk=waiting[1])
    assert denied.denied and not denied.quarantined
    assert rows(client.get(list_url(cast.product, quarantined="true"))) == []


def test_bulk_add_and_remove_group_keeps_counts(cast):
    device_ids = import_named_devices(cast, 6)
    client = signed_in(cast.developer)
    url = f"/products/{cast.product.slug}/devices/bulk/"

    r = client.post(url, {"action": "add_group", "devices": device_ids[:4], "group_add": "beta",
                          "next": list_url(cast.product, sort="name")})
    assert r.status_code == 302 and r["Location"] == list_url(cast.product, sort="name")
    group = DeviceGroup.objects.get(product=cast.product, name="beta")
    assert group.device_count == 4
    assert set(group.devices.values_list("id", flat=True)) == set(device_ids[:4])
    # Adding again is harmless; the count stays right.
    client.post(url, {"action": "add_group", "devices": device_ids[2:6], "group_add": "beta"})
    assert DeviceGroup.objects.get(pk=group.pk).device_count == 6
    page = client.get(f"/products/{cast.product.slug}/groups/").content.decode()
    assert re.search(r'data-group="beta".*?>6</a>', page, re.S)

    client.post(url, {"action": "remove_group", "devices": device_ids[:2], "group_remove": "beta"})
    assert DeviceGroup.objects.get(pk=group.pk).device_count == 4
    # Shape errors come back as a flash; nothing changes.
    r = client.post(url, {"action": "add_group", "devices": device_ids[:2], "group_add": "Not Valid"}, follow=True)
    assert "lowercase letters" in r.content.decode()
    r = client.post(url, {"action": "add_group", "group_add": "beta"}, follow=True)
    assert "Select at least one device" in r.content.decode()
    # A device of another product is refused as a whole.
    other = import_named_devices(cast, 1, product=make_product(cast.org, name="Second", platform_id=13))
    r = client.post(url, {"action": "add_group", "devices": [device_ids[0], other[0]], "group_add": "gamma"}, follow=True)
    assert "Not devices of this product" in r.content.decode()
    assert not DeviceGroup.objects.filter(name="gamma", device_count__gt=0).exists()


def test_bulk_remove_from_product(cast):
    device_ids = import_named_devices(cast, 4)
    signed_in(cast.developer).post(f"/products/{cast.product.slug}/devices/bulk/",
                                   {"action": "remove", "devices": device_ids[:3]})
    assert Device.objects.filter(product=cast.product).count() == 1
    assert Product.objects.get(pk=cast.product.pk).device_count == 1


def test_bulk_remove_from_product_is_all_or_none(cast):
    """A selection whose last device cannot be removed (it belongs to another product) removes nothing."""
    device_ids = import_named_devices(cast, 3)
    other = import_named_devices(cast, 1, product=make_product(cast.org, name="Second", platform_id=13))
    r = signed_in(cast.developer).post(f"/products/{cast.product.slug}/devices/bulk/",
                                       {"action": "remove", "devices": device_ids + other}, follow=True)
    assert r.status_code == 200
    assert "Removed 4 devices" not in r.content.decode()
    assert set(Device.objects.filter(product=cast.product).values_list("id", flat=True)) == set(device_ids)
    assert Product.objects.get(pk=cast.product.pk).device_count == 3
    assert Device.objects.get(pk=other[0]).product.name == "Second"
    assert not AuditEntry.objects.filter(action="device.remove").exists()


def test_csv_export_holds_exactly_the_filtered_devices(cast, monkeypatch):
    from devices.web import devices as views

    monkeypatch.setattr(views, "EXPORT_BATCH", 7)  # several selector pages in a small test
    device_ids = import_named_devices(cast, 20)
    owner = Principal.for_user(cast.owner)
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[:9], add=["beta"])
    Device.objects.filter(pk=device_ids[1]).update(owner=cast.developer, online=True)
    client = signed_in(cast.viewer)

    r = client.get(f"/products/{cast.product.slug}/devices/export.csv?groups=beta&sort=name")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv") and r.streaming
    assert "attachment" in r["Content-Disposition"]
    table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert table[0] == ["id", "name", "serial_number", "groups", "owner", "firmware_version", "last_heard", "online",
                        "development"]
    # The export walks the filtered list by device id (keyset paging), whatever the screen's sort.
    assert [row[0] for row in table[1:]] == sorted(device_ids[:9])
    second = next(row for row in table[1:] if row[0] == device_ids[1])
    assert second[1] == "dev-01" and second[3] == "beta" and second[4] == "developer@example.com" and second[7] == "true"

    everything = list(csv.reader(io.StringIO(b"".join(
        client.get(f"/products/{cast.product.slug}/devices/export.csv").streaming_content).decode())))
    assert sorted(row[0] for row in everything[1:]) == sorted(device_ids)
    searched = list(csv.reader(io.StringIO(b"".join(
        client.get(f"/products/{cast.product.slug}/devices/export.csv?q=dev-1").streaming_content).decode())))
    assert sorted(row[1] for row in searched[1:]) == [f"dev-{n}" for n in range(10, 20)]


def test_device_list_runs_a_fixed_number_of_queries(cast, django_assert_max_num_queries):
    client = signed_in(cast.developer)
    owner = Principal.for_user(cast.owner)
    device_ids = import_named_devices(cast, 5)
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids, add=["beta"])
    Device.objects.filter(pk__in=device_ids[:2]).update(owner=cast.developer)
    client.get(list_url(cast.product))  # warm the session and caches
    with django_assert_max_num_queries(16) as few:
        assert len(rows(client.get(list_url(cast.product, per_page=50)))) == 5
    more = import_named_devices(cast, 45)
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=more, add=["beta", "gamma"])
    Device.objects.filter(pk__in=more[:20]).update(owner=cast.developer)
    with django_assert_max_num_queries(16) as many:
        assert len(rows(client.get(list_url(cast.product, per_page=50)))) == 50
    assert len(many.captured_queries) == len(few.captured_queries)
    with django_assert_max_num_queries(17):
        assert len(rows(client.get(list_url(cast.product, per_page=50, groups="beta", q="dev")))) == 50


# --- tenancy and roles ------------------------------------------------------------------------------------


def _pages(cast) -> tuple[list[str], list[tuple[str, dict]]]:
    """Every new page (GET) and form target (POST), for a device, group, SIM, customer and job that exist."""
    device_ids = import_named_devices(cast, 2)
    device = Device.objects.get(pk=device_ids[0])
    Device.objects.filter(pk=device_ids[1]).update(owner=cast.developer)
    group = group_services.group_create(principal=Principal.for_user(cast.owner), product=cast.product, name="beta")
    sim = SimCard.objects.get(device=device)
    customer, _ = customer_create(principal=None, product=cast.product, email="cus@example.com", password="password-1")
    job = ImportJob.objects.create(product=cast.product, lines=device.id, total=1)
    p = f"/products/{cast.product.slug}"
    gets = [f"{p}/devices/", f"{p}/devices/?quarantined=true", f"{p}/devices/export.csv", f"{p}/devices/{device.id}/",
            f"{p}/devices/import/", f"{p}/devices/import/{job.pk}/", f"{p}/devices/import/{job.pk}/status/",
            f"{p}/groups/", f"{p}/sims/", f"{p}/customers/"]
    posts = [
        (f"{p}/devices/bulk/", {"action": "add_group", "devices": [device.id], "group_add": "beta"}),
        (f"{p}/devices/bulk/", {"action": "remove", "devices": [device.id]}),
        (f"{p}/devices/{device.id}/approve/", {}),
        (f"{p}/devices/{device.id}/deny/", {}),
        (f"{p}/devices/{device.id}/", {"intent": "notes", "notes-notes": "hacked"}),
        (f"{p}/devices/{device.id}/", {"intent": "name", "name-name": "hacked"}),
        (f"{p}/devices/{device.id}/", {"intent": "development", "development-development": "on"}),
        (f"{p}/devices/{device.id}/", {"intent": "firmware", "firmware-desired_firmware_version": "3"}),
        (f"{p}/devices/{device.id}/", {"intent": "groups", "groups-new_group": "hacked"}),
        (f"{p}/devices/{device_ids[1]}/", {"intent": "unclaim"}),
        (f"{p}/devices/{device.id}/", {"intent": "remove"}),
        (f"{p}/devices/import/", {"ids": device.id}),
        (f"{p}/groups/", {"new-name": "hacked", "new-color": "#000000"}),
        (f"{p}/groups/{group.name}/edit/", {f"g-{group.pk}-name": "hacked", f"g-{group.pk}-color": "#000000"}),
        (f"{p}/groups/{group.name}/delete/", {}),
        (f"{p}/sims/{sim.iccid}/state/", {"action": "deactivate"}),
        (f"{p}/sims/{sim.iccid}/release/", {}),
        (f"{p}/customers/", {"intent": "create", "new-email": "x@example.com", "new-password": "password-2"}),
        (f"{p}/customers/", {"intent": "password", "email": customer.email, "password": "password-3"}),
        (f"{p}/customers/", {"intent": "delete", "email": customer.email}),
    ]
    return gets, posts


def _snapshot(cast) -> tuple:
    devices = list(Device.objects.filter(product=cast.product).order_by("id").values_list(
        "id", "name", "notes", "development", "desired_firmware_version", "owner_id", "denied"))
    return (devices, list(DeviceGroup.objects.filter(product=cast.product).values_list("name", "color", "device_count")),
            list(SimCard.objects.order_by("iccid").values_list("iccid", "status", "product_id")),
            list(Customer.objects.values_list("email", "password")), ImportJob.objects.count(),
            Product.objects.get(pk=cast.product.pk).device_count)


@pytest.mark.parametrize("page", ["\u00b2", "\u0663", "-1", "0", "1e3", "99999999999999999999999", " 2", "abc"])
def test_odd_page_numbers_fall_back_to_the_first_page(cast, page):
    # '²'.isdigit() is True but int('²') raises: every paged console list must shrug, not 500.
    import_named_devices(cast, 3)
    client = signed_in(cast.owner)
    gets, _ = _pages(cast)
    paged = [u for u in gets if u.rstrip("/").endswith(("devices", "sims", "customers"))] + ["/devices/"]
    assert len(paged) >= 4, paged
    for url in paged:
        for key in ("page", "per_page"):
            r = client.get(url, {key: page})
            assert r.status_code == 200, (url, key, page, r.status_code)


def test_outsiders_get_404_on_every_page(cast):
    gets, posts = _pages(cast)
    before = _snapshot(cast)
    client = signed_in(cast.outsider)
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert _snapshot(cast) == before
    # Signed out: to the sign-in page.
    assert Client().get(gets[0])["Location"].startswith("/login/")


def test_viewer_reads_without_write_controls_and_cannot_write(cast):
    gets, posts = _pages(cast)
    before = _snapshot(cast)
    client = signed_in(cast.viewer)
    for url in gets:
        if "/import/" in url:
            assert client.get(url).status_code == 403, url  # importing is for Developers and up
            continue
        r = client.get(url)
        assert r.status_code == 200, url
        if r.streaming:  # the CSV export
            continue
        html = r.content.decode()
        for control in ('data-open-dialog="bulk-', 'name="devices"', "Import devices</a>", ">Approve<", ">Deny<",
                        "Save notes", "Save groups", "Save lock", ">Rename<", "Remove from product", ">Unclaim<",
                        "New group", ">Edit<", ">Deactivate<", ">Release<", "New customer", "Set password"):
            assert control not in html, (url, control)
    device_page = client.get(gets[3]).content.decode()
    assert "Read-only." in device_page and 'name="notes-notes"' in device_page and "disabled" in device_page
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert _snapshot(cast) == before


def test_support_may_change_sim_state_but_not_release(cast):
    gets, _ = _pages(cast)
    sim = SimCard.objects.filter(product=cast.product, status=SimCard.Status.ACTIVE).first()
    client = signed_in(cast.support)
    html = client.get(f"/products/{cast.product.slug}/sims/").content.decode()
    assert ">Deactivate<" in html and ">Release<" not in html
    r = client.post(f"/products/{cast.product.slug}/sims/{sim.iccid}/state/", {"action": "deactivate"})
    assert r.status_code == 302 and SimCard.objects.get(pk=sim.pk).status == SimCard.Status.INACTIVE
    assert client.post(f"/products/{cast.product.slug}/sims/{sim.iccid}/release/").status_code == 403


def test_sidebar_links_the_new_pages(cast):
    html = signed_in(cast.viewer).get(f"/products/{cast.product.slug}/").content.decode()
    for path in ("devices", "groups", "sims", "customers"):
        assert f'href="/products/{cast.product.slug}/{path}/"' in html, path
    sandbox = signed_in(cast.viewer).get("/products/").content.decode()
    assert 'href="/devices/"' in sandbox


# --- one device -------------------------------------------------------------------------------------------


def test_device_page_shows_every_field_and_edits(cast):
    device_ids = import_named_devices(cast, 2)
    device = Device.objects.get(pk=device_ids[0])
    client = signed_in(cast.developer)
    url = f"/products/{cast.product.slug}/devices/{device.id}/"

    html = client.get(url).content.decode()
    for field in ("serial_number", "iccid", "last_heard", "firmware_updates_enabled", "desired_firmware_version",
                  "system_firmware_version", "development", "quarantined", "groups", "platform_id"):
        assert f'<code class="mono">{field}</code>' in html, field
    sim = SimCard.objects.get(device=device)
    assert f"/sims/?iccid={sim.iccid}" in html and "Active" in html
    # Its script once: included twice, every change listener fired twice (the switch posted twice).
    assert html.count("console/devices.js") == 1

    r = client.post(url, {"intent": "notes", "notes-notes": "On the roof of building 4."})
    assert r.status_code == 302 and r["Location"] == url + "#notes"
    client.post(url, {"intent": "name", "name-name": "roof-sensor"})
    client.post(url, {"intent": "development", "development-development": "on"})
    client.post(url, {"intent": "firmware", "firmware-desired_firmware_version": "7"})
    client.post(url, {"intent": "groups", "groups-new_group": "roof"})
    device.refresh_from_db()
    assert (device.notes, device.name, device.development, device.desired_firmware_version) == \
        ("On the roof of building 4.", "roof-sensor", True, 7)
    assert list(device.groups.values_list("name", flat=True)) == ["roof"]
    assert DeviceGroup.objects.get(product=cast.product, name="roof").device_count == 1

    # Untick the group and clear the lock.
    client.post(url, {"intent": "groups"})
    client.post(url, {"intent": "firmware", "firmware-desired_firmware_version": ""})
    client.post(url, {"intent": "development"})
    device.refresh_from_db()
    assert not device.groups.exists() and device.desired_firmware_version is None and not device.development
    assert DeviceGroup.objects.get(product=cast.product, name="roof").device_count == 0

    # A bad name is a field error in the reopened dialog; nothing changes.
    r = client.post(url, {"intent": "name", "name-name": "no spaces allowed"})
    assert r.status_code == 400 and "letters, digits, dashes" in r.content.decode()
    assert 'id="name-dialog" aria-labelledby="name-title" data-open-on-load' in r.content.decode()
    assert Device.objects.get(pk=device.pk).name == "roof-sensor"

    history = client.get(url).content.decode().split('class="table table-history"')[1].split("</table>")[0]
    entries = re.findall(r'<code class="mono">(device\.\w+)</code></td><td>([^<]*)</td>\s*<td class="muted small">([^<]*)<',
                         history)
    assert [e[0] for e in entries] == ["device.update"] * 2 + ["device.groups"] * 2 + ["device.update"] * 4  # newest first
    assert entries[0] == ("device.update", "developer@example.com", "fields: development")
    assert entries[-1][2] == "fields: notes" and entries[2][2] == "groups: —" and entries[3][2] == "groups: roof"


def test_device_page_unclaim_and_remove(cast):
    device_ids = import_named_devices(cast, 2)
    Device.objects.filter(pk=device_ids[0]).update(owner=cast.support)
    client = signed_in(cast.developer)
    url = f"/products/{cast.product.slug}/devices/{device_ids[0]}/"
    assert "support@example.com" in client.get(url).content.decode()
    client.post(url, {"intent": "unclaim"})
    assert Device.objects.get(pk=device_ids[0]).owner_id is None
    r = client.post(url, {"intent": "remove"})
    assert r["Location"] == f"/products/{cast.product.slug}/devices/"
    assert Device.objects.get(pk=device_ids[0]).product_id is None
    assert client.get(url).status_code == 404  # no longer in the product


def test_a_device_of_another_product_is_404(cast):
    other = make_product(cast.org, name="Second", platform_id=13)
    elsewhere = import_named_devices(cast, 1, product=other)[0]
    client = signed_in(cast.owner)
    assert client.get(f"/products/{cast.product.slug}/devices/{elsewhere}/").status_code == 404
    assert client.post(f"/products/{cast.product.slug}/devices/{elsewhere}/",
                       {"intent": "notes", "notes-notes": "x"}).status_code == 404
    assert client.get(f"/products/{cast.product.slug}/devices/not-a-device/").status_code == 404


# --- import -----------------------------------------------------------------------------------------------


def test_import_page_creates_a_job_and_the_report_shows_rejected_lines(cast):
    from django.core.files.uploadedfile import SimpleUploadedFile

    good = ids(manufacture(13, 3))
    wifi = ids(manufacture(12, 1))  # an Argon: the wrong platform for a Boron product
    serial = Device.objects.get(pk=good[2]).serial_number
    text = "\n".join([good[0], good[1], "not-an-id!", serial, wifi[0], "", good[0]])
    client = signed_in(cast.developer)

    page = client.get(f"/products/{cast.product.slug}/devices/import/").content.decode()
    assert 'type="file"' in page and "developer@example.com" in page  # claim_user choices: the team
    upload = SimpleUploadedFile("order-4711.txt", text.encode(), content_type="text/plain")
    r = client.post(f"/products/{cast.product.slug}/devices/import/", {"file": upload, "import_sims": "on"})
    job = ImportJob.objects.get(product=cast.product)
    assert r.status_code == 302 and r["Location"] == f"/products/{cast.product.slug}/devices/import/{job.pk}/"
    assert job.state == ImportJob.State.PENDING and job.total == 6 and job.options["import_sims"] is True

    waiting = client.get(r["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in waiting and "0 of 6 entries checked" in waiting

    assert import_job_run(job.pk) == ImportJob.State.DONE
    status = client.get(f"/products/{cast.product.slug}/devices/import/{job.pk}/status/").content.decode()
    assert "hx-trigger" not in status  # polling stops
    assert re.search(r'data-verdict="added">\s*<span class="verdict-count">3<', status)
    assert re.search(r'data-verdict="wrong_platform">\s*<span class="verdict-count">1<', status)
    assert re.search(r'data-verdict="duplicate">\s*<span class="verdict-count">1<', status)
    for line, value in ((3, "not-an-id!"), (5, wifi[0]), (7, good[0])):
        assert re.search(rf'<tr data-line="{line}"><td class="mono">{line}</td><td><code class="mono">{re.escape(value)}</code>',
                         status), line
    assert Device.objects.filter(product=cast.product).count() == 3
    assert SimCard.objects.filter(product=cast.product, status=SimCard.Status.ACTIVE).count() == 3

    report = client.get(f"/products/{cast.product.slug}/devices/import/{job.pk}/report.csv")
    table = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert table[0] == ["line", "value", "device_id", "verdict", "reason"]
    verdicts = {(int(row[0]), row[1]): (row[2], row[3], row[4]) for row in table[1:]}
    assert verdicts[(1, good[0])] == (good[0], "added", "")
    assert verdicts[(4, serial)] == (good[2], "added", "")  # a serial number, mapped back to its device
    assert verdicts[(3, "not-an-id!")][1:] == ("rejected", "invalid: " + importing.REASONS["invalid"])
    assert verdicts[(5, wifi[0])][1] == "rejected" and verdicts[(5, wifi[0])][2].startswith("wrong_platform")
    assert verdicts[(7, good[0])][2].startswith("duplicate")
    assert len(table) == 7

    # A second import of the same ids: they already exist.
    client.post(f"/products/{cast.product.slug}/devices/import/", {"ids": f"{good[0]}\n{good[1]}", "import_sims": "on"})
    again = ImportJob.objects.filter(product=cast.product).order_by("-pk").first()
    import_job_run(again.pk)
    html = client.get(f"/products/{cast.product.slug}/devices/import/{again.pk}/").content.decode()
    assert re.search(r'data-verdict="existing">\s*<span class="verdict-count">2<', html)
    listing = client.get(f"/products/{cast.product.slug}/devices/import/").content.decode()
    assert f"#{job.pk}" in listing and f"#{again.pk}" in listing


def test_import_form_errors_and_failed_jobs(cast):
    client = signed_in(cast.developer)
    url = f"/products/{cast.product.slug}/devices/import/"
    r = client.post(url, {"import_sims": "on"})
    assert r.status_code == 400 and "Choose a file, or paste device IDs" in r.content.decode()
    r = client.post(url, {"ids": "  \n # only a comment\n"})
    assert r.status_code == 400 and "no device ids" in r.content.decode()
    r = client.post(url, {"ids": "abc", "claim_user": "outsider@example.com"})
    assert r.status_code == 400 and "Select a valid choice" in r.content.decode()
    assert not ImportJob.objects.exists()

    # A job refused as a whole (the team member left before it ran) shows its error.
    sandbox_product = cast.sandbox_product
    good = ids(manufacture(12, 1))
    job = ImportJob.objects.create(product=sandbox_product, created_by=cast.owner, lines=good[0], total=1,
                                   options={"import_sims": True, "claim_user": "nobody@example.com"})
    import_job_run(job.pk)
    html = signed_in(cast.owner).get(f"/products/{sandbox_product.slug}/devices/import/{job.pk}/").content.decode()
    assert "nothing was added" in html and "nobody@example.com" in html
    assert signed_in(cast.owner).get(
        f"/products/{sandbox_product.slug}/devices/import/{job.pk}/report.csv").status_code == 404


def test_import_job_of_another_product_is_404(cast):
    other = make_product(cast.org, name="Second", platform_id=13)
    job = ImportJob.objects.create(product=other, lines="x", total=1)
    client = signed_in(cast.owner)
    for suffix in ("", "status/", "report.csv"):
        assert client.get(f"/products/{cast.product.slug}/devices/import/{job.pk}/{suffix}").status_code == 404


# --- groups, SIM cards, customers --------------------------------------------------------------------------


def test_groups_page_create_edit_delete(cast):
    client = signed_in(cast.developer)
    url = f"/products/{cast.product.slug}/groups/"
    assert "No groups yet" in client.get(url).content.decode()
    r = client.post(url, {"new-name": "beta-testers", "new-color": "#34495E", "new-description": "Early firmware"})
    assert r.status_code == 302
    group = DeviceGroup.objects.get(product=cast.product, name="beta-testers")
    assert group.color == "#34495e" and group.description == "Early firmware"
    html = client.get(url).content.decode()
    assert f'href="/products/{cast.product.slug}/devices/?groups=beta-testers"' in html and "--swatch: #34495e" in html

    r = client.post(url, {"new-name": "Beta Testers", "new-color": "#34495e"})
    assert r.status_code == 400 and "lowercase letters" in r.content.decode()
    r = client.post(url, {"new-name": "beta-testers", "new-color": "#34495e"})
    assert r.status_code == 400 and "already exists" in r.content.decode()
    assert 'id="group-new-dialog" aria-labelledby="group-new-title" data-open-on-load' in r.content.decode()
    r = client.post(url, {"new-name": "x", "new-color": "red"})
    assert r.status_code == 400 and "hex colour" in r.content.decode()

    client.post(f"{url}beta-testers/edit/", {f"g-{group.pk}-name": "early", f"g-{group.pk}-color": "#00ff00",
                                             f"g-{group.pk}-description": ""})
    group.refresh_from_db()
    assert (group.name, group.color, group.description) == ("early", "#00ff00", "")
    client.post(f"{url}early/delete/")
    assert not DeviceGroup.objects.filter(pk=group.pk).exists()
    assert client.post(f"{url}early/delete/").status_code == 404


def test_sims_page_filters_pages_and_actions(cast, monkeypatch):
    from devices.models import SimUsage

    device_ids = import_named_devices(cast, 3)
    sims = list(SimCard.objects.filter(product=cast.product).order_by("iccid"))
    from django.utils import timezone

    SimUsage.objects.create(sim=sims[0], date=timezone.now().date(), mbs_used="12.5")
    client = signed_in(cast.developer)
    url = f"/products/{cast.product.slug}/sims/"
    html = client.get(url).content.decode()
    assert all(f'data-sim="{s.iccid}"' in html for s in sims)
    assert "12.50 MB" in html and 'data-active-sims>3<' in html and "<rect" in html
    one = Device.objects.get(pk=device_ids[1])
    filtered = client.get(url, {"device_name": one.name}).content.decode()
    assert filtered.count("data-sim=") == 1 and one.sim.iccid in filtered
    assert client.get(url, {"device_id": device_ids[2][:8]}).content.decode().count("data-sim=") == 1

    target = sims[1]
    client.post(f"{url}{target.iccid}/state/", {"action": "deactivate"})
    assert SimCard.objects.get(pk=target.pk).status == SimCard.Status.INACTIVE
    r = client.post(f"{url}{target.iccid}/state/", {"action": "deactivate"}, follow=True)
    assert "Only an active SIM can be deactivated" in r.content.decode()
    client.post(f"{url}{target.iccid}/state/", {"action": "reactivate"})
    assert SimCard.objects.get(pk=target.pk).status == SimCard.Status.ACTIVE
    client.post(f"{url}{target.iccid}/release/")
    released = SimCard.objects.get(pk=target.pk)
    assert released.product_id is None and released.status == SimCard.Status.INACTIVE
    assert client.post(f"{url}{target.iccid}/state/", {"action": "activate"}).status_code == 404

    monkeypatch.setattr("devices.web.sims.COUNT_CAP", 1)  # a capped total still pages
    page = client.get(url).content.decode()
    assert page.count("data-sim=") == 2 and "of more than 1" in page


def test_customers_page(cast):
    device_ids = import_named_devices(cast, 2)
    client = signed_in(cast.developer)
    url = f"/products/{cast.product.slug}/customers/"
    assert "No customers yet" in client.get(url).content.decode()
    r = client.post(url, {"intent": "create", "new-email": "Ann@Example.com", "new-password": "password-one"})
    assert r.status_code == 302
    ann = Customer.objects.get(product=cast.product)
    assert ann.email == "ann@example.com" and not ann.no_password
    client.post(url, {"intent": "create", "new-email": "shadow@example.com", "new-no_password": "on"})
    assert Customer.objects.get(email="shadow@example.com").no_password
    r = client.post(url, {"intent": "create", "new-email": "ann@example.com", "new-password": "password-one"})
    assert r.status_code == 400 and "already exists" in r.content.decode()
    r = client.post(url, {"intent": "create", "new-email": "bob@example.com"})
    assert r.status_code == 400 and "Set a password" in r.content.decode()

    Device.objects.filter(pk=device_ids[0]).update(customer=ann)
    html = client.get(url).content.decode()
    row = html.split('data-customer="ann@example.com"')[1].split("</tr>")[0]
    assert "dev-00" in row and "Shadow · no password" in html

    old_hash = ann.password
    r = client.post(url, {"intent": "password", "email": ann.email, "password": "short"})
    assert r.status_code == 400 and f'id="customer-{ann.pk}-password-dialog"' in r.content.decode()
    client.post(url, {"intent": "password", "email": ann.email, "password": "a-new-password"})
    assert Customer.objects.get(pk=ann.pk).password != old_hash

    assert AccessToken.objects.filter(customer_id=ann.pk).exists()  # its first token, issued at creation
    client.post(url, {"intent": "delete", "email": ann.email})
    assert not Customer.objects.filter(pk=ann.pk).exists()
    assert not AccessToken.objects.filter(customer_id=ann.pk).exists()
    assert Device.objects.get(pk=device_ids[0]).customer_id is None
    assert client.post(url, {"intent": "delete", "email": ann.email}).status_code == 404


# --- the sandbox device list ----------------------------------------------------------------------------------


def test_sandbox_list_checkbox_and_details(cast):
    user = UserFactory(email="maker@example.com")
    me = Principal.for_user(user)
    personal = ids(manufacture(12, 2))
    for device_id in personal:
        connect(device_id)  # claiming by id needs the device online
        claims.device_claim(principal=me, device_id=device_id)
    in_org = import_named_devices(cast, 3)  # org product devices claimed to the user: listed, never counted
    Device.objects.filter(pk__in=in_org).update(owner=user)
    from console.services.users import sandbox_of

    own_product = make_product(sandbox_of(user), name="Maker Product", platform_id=13)
    made = ids(manufacture(13, 2))
    importing.device_import(principal=me, product=own_product, values=list(enumerate(made, 1)))
    Device.objects.filter(pk=made[0]).update(owner=user)

    client = signed_in(user)
    r = client.get("/devices/")
    html = r.content.decode()
    assert set(rows(r)) == set(personal) | set(in_org) | {made[0]}
    assert re.search(r'Total personal devices</dt><dd data-detail="personal">2<', html)
    assert re.search(r'Total claimed product devices</dt><dd data-detail="product">4<', html)
    # Counted: 2 personal + the 2 devices of the free product the user owns; org devices never count.
    assert re.search(r'data-detail="limit">4 of 100<', html)
    assert 'name="sandbox_only"' in html and "Show sandbox devices only" in html
    assert f'href="/products/{own_product.slug}/devices/{made[0]}/"' in html
    assert f'/devices/{in_org[0]}/"' not in html  # the user has no seat on the org product: no link

    only = client.get("/devices/?sandbox_only=1")
    assert set(rows(only)) == set(personal) and "checked" in only.content.decode().split('id="sandbox-only"')[1][:80]
    nav = html.split('class="nav"')[1].split("</ul>")[0]
    assert 'href="/devices/"' in nav and "is-active" in nav.split('href="/devices/"')[0][-80:]
    # Nobody else's devices, and an empty list says what to do.
    empty = signed_in(cast.outsider).get("/devices/").content.decode()
    assert "No devices yet" in empty and rows(signed_in(cast.outsider).get("/devices/")) == []


def test_audit_history_is_scoped_to_the_product(cast):
    device_id = import_named_devices(cast, 1)[0]
    AuditEntry.objects.create(action="device.update", target=device_id, product_id=cast.outsider_product.pk,
                              actor_label="someone-else@example.com")
    html = signed_in(cast.owner).get(f"/products/{cast.product.slug}/devices/{device_id}/").content.decode()
    assert "someone-else@example.com" not in html


def test_csv_export_streams_under_asgi_without_buffering(cast, monkeypatch, recwarn):
    """Under ASGI (the web process) the export is an async iterator fed one selector page at a time: a plain
    generator would make Django read the whole file into memory before sending the first byte."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from devices.web import devices as views

    monkeypatch.setattr(views, "EXPORT_BATCH", 2)
    device_ids = import_named_devices(cast, 5)
    client = AsyncClient()
    client.force_login(cast.viewer)

    async def fetch():
        response = await client.get(f"/products/{cast.product.slug}/devices/export.csv?sort=id")
        assert response.is_async
        return b"".join([chunk async for chunk in response.streaming_content])

    body = async_to_sync(fetch)().decode()
    assert [line.split(",")[0] for line in body.splitlines()[1:]] == sorted(device_ids)
    assert not [w for w in recwarn if "consume" in str(w.message)]
