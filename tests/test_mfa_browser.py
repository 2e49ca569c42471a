"""MFA in a real browser (Debian's chromium through Playwright): set it up on /account/mfa/ reading the key off
the page (the QR code must render: an image the CSP blocked would have no size), sign out, sign back in with a
code from pyotp, then turn it off. Screenshots go to /tmp/cyan-shots/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from console.models import UserMfa
from tests.factories import PASSWORD, UserFactory
from tests.support.browser import browser_tab, screenshot
from tests.support.mfa import steps, wrong_code

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page():
    with browser_tab(SHOTS) as tab:
        yield tab


def test_set_up_mfa_sign_out_and_sign_in_with_a_code(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    UserFactory(email="ada@example.com", first_name="Ada")
    page.goto(f"{base}/login/?next=/authentication/")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/authentication/")

    # The user menu leads to the MFA page.
    page.locator("summary.user-button").click()
    page.get_by_role("link", name="Two-step sign-in").click()
    page.wait_for_url(f"{base}/account/mfa/")
    expect(page.locator("[data-mfa-status]")).to_have_text("Off")
    page.get_by_role("button", name="Set up two-step sign-in").click()

    qr = page.locator("img[data-qr]")
    expect(qr).to_be_visible()
    assert page.evaluate("() => document.querySelector('img[data-qr]').naturalWidth") > 0  # not blocked by the CSP
    secret = page.locator("[data-mfa-secret]").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    screenshot(page, SHOTS, "mfa-01-setup")
    page.get_by_label("Code from your app").fill(wrong_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator(".field-error")).to_contain_text("The one-time password is invalid")
    page.get_by_label("Code from your app").fill(steps(secret).current)
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("[data-mfa-status]")).to_have_text("On")
    recovery = page.locator("[data-recovery-codes] code").all_inner_texts()
    assert len(recovery) == 10
    screenshot(page, SHOTS, "mfa-02-recovery-codes")
    assert UserMfa.objects.get(user__email="ada@example.com").enabled

    # Sign out, then in again: the password alone is not enough.
    page.locator("summary.user-button").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/login/")
    page.goto(f"{base}/login/?next=/account/mfa/")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/login/code/")
    expect(page.get_by_role("heading", name="Enter your authentication code")).to_be_visible()
    screenshot(page, SHOTS, "mfa-03-code-page")
    page.goto(f"{base}/products/")
    page.wait_for_url(re.compile(r".*/login/\?next=/products/$"))  # not signed in yet
    page.go_back()
    page.wait_for_url(f"{base}/login/code/")
    # The next step's code: the one just used (or an older one) would be refused as a replay.
    page.get_by_label("Authentication code").fill(steps(secret).next)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/account/mfa/")
    expect(page.locator("[data-codes-left]")).to_have_text("10 of 10")

    # Turn it off with the current password.
    page.get_by_role("button", name="Turn off").click()
    dialog = page.locator("#disable-dialog")
    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_role("button", name="Turn off").click()
    expect(page.locator("[data-mfa-status]")).to_have_text("Off")
    assert not UserMfa.objects.filter(user__email="ada@example.com").exists()
