"""The console in a real browser (Debian's chromium, driven by Playwright's sync API): a new product's
first steps from sign-in to sign-out, and what a View-only member sees. Screenshots of each main page go
to /tmp/cyan-shots/ so a person can judge the design."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from console.models import OAuthClient
from console.roles import Role
from products.models import Product, ProductMembership
from tests.support.browser import browser_tab, screenshot, sign_in
from tests.factories import PASSWORD, UserFactory, make_org, make_product, seat

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page():
    with browser_tab(SHOTS) as tab:
        yield tab


def shot(page, name: str) -> None:
    screenshot(page, SHOTS, name)


def test_first_steps_from_sign_in_to_sign_out(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    owner = UserFactory(email="dana@example.com", first_name="Dana")
    org = make_org(owner, "Acme Devices")
    teammate = UserFactory(email="sam@example.com")

    # Sign in: the sandbox is empty and says what to do next.
    page.goto(f"{base}/login/")
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    shot(page, "01-sign-in")
    page.get_by_label("Email").fill("dana@example.com")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/products/")
    expect(page.get_by_role("heading", name="No products yet")).to_be_visible()
    # A page still to come is a disabled entry, not a dead link; one that exists is a link.
    expect(page.locator(".nav-item.is-disabled", has_text="Billing")).to_have_attribute("aria-disabled", "true")
    expect(page.get_by_role("link", name="Events")).to_have_attribute("href", "/events/")
    shot(page, "02-sandbox-products-empty")

    # Switch from the sandbox to the organization.
    page.locator("summary.switcher-button").click()
    expect(page.locator(".switcher-menu")).to_be_visible()
    shot(page, "03-account-switcher")
    page.locator(f'button[data-account="{org.slug}"]').click()
    page.wait_for_url(f"{base}/orgs/{org.slug}/products/")
    expect(page.locator(".switcher-name")).to_have_text("Acme Devices")

    # Create a product; a duplicate name comes back as a field error in the reopened dialog.
    page.get_by_role("button", name="New product").first.click()
    dialog = page.locator("#product-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Name").fill("Asset Trackers")
    dialog.get_by_label("Device type").select_option("13")
    dialog.get_by_label("Description").fill("Boron trackers on pallets.")
    shot(page, "04-new-product-dialog")
    dialog.get_by_role("button", name="Create product").click()
    page.wait_for_url(re.compile(r"/products/asset-trackers/$"))
    expect(page.locator(".flash-success")).to_contain_text("Asset Trackers created")
    product = Product.objects.get(name="Asset Trackers")
    assert product.account_id == org.pk and product.platform_id == 13
    shot(page, "05-product-overview")

    page.goto(f"{base}/orgs/{org.slug}/products/")
    page.get_by_role("button", name="New product").first.click()
    dialog.get_by_label("Name").fill("asset trackers")
    dialog.get_by_label("Device type").select_option("13")
    dialog.get_by_role("button", name="Create product").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator(".field-error")).to_contain_text("already exists")
    shot(page, "06-new-product-duplicate-error")
    assert Product.objects.filter(name__iexact="asset trackers").count() == 1
    dialog.get_by_role("button", name="Cancel").click()
    shot(page, "07-org-products")

    # Invite a teammate to the product, then change their role in place (htmx).
    page.goto(f"{base}/products/{product.slug}/")
    page.locator(".sidebar").get_by_role("link", name="Team").click()
    page.wait_for_url(f"{base}/products/{product.slug}/team/")
    page.get_by_role("button", name="Invite member").click()
    invite = page.locator("#invite-dialog")
    invite.get_by_label("Email").fill("sam@example.com")
    invite.get_by_label("Role").select_option("developer")
    invite.get_by_role("button", name="Send invite").click()
    expect(page.locator(".flash-success")).to_contain_text("sam@example.com joined the team as Developer")
    # htmx is a deferred script: the flash can be on screen before htmx has bound its listeners, and a change made
    # in that gap is never sent. A person cannot be that quick; the test can, so it waits for the page's load.
    page.wait_for_load_state("load")
    row = page.locator('tr[data-member="sam@example.com"]')
    row.get_by_label("Role of sam@example.com").select_option("support")
    expect(page.locator('tr[data-member="sam@example.com"] .saved')).to_be_visible(timeout=15_000)
    assert ProductMembership.objects.get(product=product, user=teammate).role == Role.SUPPORT
    page.reload()
    expect(page.get_by_label("Role of sam@example.com")).to_have_value("support")
    shot(page, "08-product-team")

    # Remove asks first.
    page.locator('tr[data-member="sam@example.com"]').get_by_role("button", name="Remove").click()
    confirm = page.get_by_role("dialog", name="Remove sam@example.com?")
    expect(confirm).to_be_visible()
    shot(page, "09-remove-confirmation")
    confirm.get_by_role("button", name="Remove").click()
    expect(page.locator(".flash-success")).to_contain_text("sam@example.com was removed")
    expect(page.locator('tr[data-member="sam@example.com"]')).to_have_count(0)

    # An OAuth client: the secret is shown once, with a copy button.
    page.locator(".sidebar").get_by_role("link", name="Authentication").click()
    page.wait_for_url(f"{base}/products/{product.slug}/authentication/")
    expect(page.get_by_text("No OAuth clients yet.")).to_be_visible()
    page.get_by_role("button", name="New client").click()
    client_dialog = page.locator("#client-dialog")
    client_dialog.get_by_label("Name").fill("Fleet backend")
    client_dialog.get_by_role("button", name="Create client").click()
    reveal = page.locator("[data-reveal]")
    expect(reveal).to_contain_text("Fleet backend")
    secret = reveal.locator("[data-secret]").input_value()
    client = OAuthClient.objects.get(product_id=product.pk)
    assert client.check_secret(secret)
    reveal.get_by_role("button", name="Copy").click()
    expect(reveal.locator("[data-copy-label]")).to_have_text("Copied")
    shot(page, "10-product-authentication-secret")
    page.goto(page.url)
    expect(page.locator(f'tr[data-client="{client.client_id}"]')).to_be_visible()
    assert secret not in page.content()

    # Settings: switch to auto-approve.
    page.locator(".sidebar").get_by_role("link", name="Settings").click()
    page.get_by_label("Auto-approve — add them to the product straight away").check()
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".flash-success")).to_contain_text("saved")
    assert Product.objects.get(pk=product.pk).quarantine is False
    shot(page, "11-product-settings")

    # The organization's team and settings, and the sandbox's Authentication page.
    page.goto(f"{base}/orgs/{org.slug}/team/")
    expect(page.get_by_text("Administrator (Owner)")).to_be_visible()
    page.get_by_role("button", name="Add API user").first.click()
    api_dialog = page.locator("#api-user-dialog")
    api_dialog.get_by_label("Friendly name").fill("Dashboard server")
    api_dialog.locator('input[value="devices:list"]').check()
    api_dialog.locator('input[value="products:get"]').check()
    shot(page, "12-api-user-dialog")
    api_dialog.get_by_role("button", name="Create API user").click()
    expect(page.locator("[data-reveal]")).to_contain_text("Dashboard server")
    shot(page, "13-org-team")
    page.goto(f"{base}/orgs/{org.slug}/settings/")
    shot(page, "14-org-settings")

    page.locator("summary.switcher-button").click()
    page.locator('button[data-account="sandbox"]').click()
    page.wait_for_url(f"{base}/products/")
    page.locator(".sidebar").get_by_role("link", name="Authentication").click()
    page.get_by_role("button", name="Create token").click()
    page.locator("#token-dialog").get_by_label("Expires after").select_option("86400")
    page.locator("#token-dialog").get_by_role("button", name="Create token").click()
    expect(page.locator("[data-reveal]")).to_contain_text("Access token created")
    expect(page.locator("#tokens tbody tr")).to_have_count(1)
    shot(page, "15-sandbox-authentication")

    page.goto(f"{base}/organizations/new/")
    shot(page, "16-create-organization")

    # Sign out from the user menu.
    page.locator("summary.user-button").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/login/")
    expect(page.locator(".flash")).to_contain_text("signed out")
    shot(page, "17-signed-out")
    page.goto(f"{base}/products/")
    page.wait_for_url(re.compile(r"/login/\?next="))


def test_view_only_member_reads_settings_and_outsider_sees_404(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    owner = UserFactory(email="owner@example.com")
    org = make_org(owner, "Acme")
    product = make_product(org, name="Trackers")
    viewer = UserFactory(email="viewer@example.com")
    seat(org, viewer, Role.VIEWER)
    UserFactory(email="outsider@example.com")

    sign_in(page, base, "viewer@example.com")
    page.goto(f"{base}/products/{product.slug}/settings/")
    expect(page.get_by_role("note")).to_contain_text("Read-only")
    expect(page.get_by_label("Name")).to_be_disabled()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
    shot(page, "18-viewer-settings-read-only")
    page.goto(f"{base}/products/{product.slug}/team/")
    expect(page.get_by_role("button", name="Invite member")).to_have_count(0)
    expect(page.locator("select")).to_have_count(0)

    page.locator("summary.user-button").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "outsider@example.com")
    response = page.goto(f"{base}/products/{product.slug}/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    shot(page, "19-not-found")
