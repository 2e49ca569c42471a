"""Team invitations to an email with no account (Cyan issue 11, item 13): a pending invitation and a mailed
sign-up link; signing up through it joins the team with the invited role, even with sign-up closed; pending
invitations are listed, revoked (DELETE .../team/:email) and expire. Only the link joins: an invited email
signed up without it gets no seat."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from console.models import Invitation, OrgMembership, User
from console.roles import ROLE_IDS, Role
from console.scoping import Principal
from console.services.teams import invitation_token, org_team, team_invite, team_remove
from products.models import ProductMembership
from products.services import product_delete, product_team
from tests.support.api import Api
from tests.support.browser import browser_tab, screenshot
from tests.support.console import signed_in
from tests.support.mail import body_text, only_link, smtp_receiver
from tests.support.worker import running_celery_worker

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots"))
STRONG = "tidal-lantern-orbit-42"


def invite(cast, email="newbie@example.com", role="Support", who="owner", where="product"):
    path = f"/v1/products/{cast.product.slug}/team" if where == "product" else f"/v1/orgs/{cast.org.slug}/team"
    return cast.api(who).post(path, {"username": email, "role": role})


def invitation_of(email="newbie@example.com") -> Invitation:
    return Invitation.objects.get(email=email, accepted_at__isnull=True, revoked_at__isnull=True)


def signup(token, email="newbie@example.com", password=STRONG):
    return Api().post("/v1/users", {"username": email, "password": password, "invitation": token})


@pytest.mark.django_db(transaction=True)
def test_an_invite_to_an_unknown_email_mails_a_link_that_signs_up_into_the_team(cast, settings):
    settings.PUBLIC_URL = "http://cyan.test"
    with smtp_receiver(settings) as inbox, running_celery_worker():
        r = invite(cast, "NewBie@Example.com ")
        assert r.status_code == 200, r.content
        inv = invitation_of()
        assert r.json() == {"ok": True, "invited": {
            "username": "newbie@example.com", "role": "Support", "pending": True,
            "expires_at": inv.expires_at.isoformat().replace("+00:00", "Z")}}
        assert (inv.product_id, inv.account_id, inv.role, inv.invited_by) == \
            (cast.product.pk, None, Role.SUPPORT, cast.owner)
        assert timedelta(days=6, hours=23) < inv.expires_at - timezone.now() <= timedelta(days=7)
        message = inbox.wait_for("newbie@example.com")
    assert message["Subject"] == "You are invited to the product Trackers on Cyan"
    assert "with the role Support" in body_text(message)
    link = only_link(message)
    assert link == f"http://cyan.test/signup/?invite={invitation_token(inv)}"
    assert len(inv.token_hash) == 64 and invitation_token(inv) not in inv.token_hash

    team = cast.api("owner").get(f"/v1/products/{cast.product.slug}/team").json()["team"]
    assert team[-1] == {"username": "newbie@example.com", "role": {"id": ROLE_IDS[Role.SUPPORT], "name": "Support"},
                        "pending": True, "expires_at": inv.expires_at.isoformat().replace("+00:00", "Z"),
                        "invited_by": "owner@example.com"}

    r = signup(link.split("invite=")[1])
    assert r.status_code == 200 and r.json() == {"ok": True}
    user = User.objects.get(email="newbie@example.com")
    assert ProductMembership.objects.get(product=cast.product, user=user).role == Role.SUPPORT
    inv.refresh_from_db()
    assert inv.state == "accepted" and inv.accepted_by == user
    team = cast.api("owner").get(f"/v1/products/{cast.product.slug}/team").json()["team"]
    assert [e for e in team if e["username"] == "newbie@example.com"] == [{
        "_id": f"{user.pk:024x}", "username": "newbie@example.com",
        "role": {"id": ROLE_IDS[Role.SUPPORT], "name": "Support"}, "role_label": "Support", "is_owner": False,
        "no_mfa": True, "no_password": False, "scim_provisioned": False}]


@pytest.mark.django_db
def test_an_invitation_link_works_while_signup_is_closed(cast, settings):
    settings.SIGNUP_OPEN = False
    assert invite(cast, "org.newbie@example.com", "View-only", where="org").status_code == 200
    token = invitation_token(invitation_of("org.newbie@example.com"))
    assert signup(None, "walkin@example.com").status_code == 403
    r = signup(token, "org.newbie@example.com")
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert OrgMembership.objects.get(account=cast.org, user__email="org.newbie@example.com").role == Role.VIEWER


@pytest.mark.django_db
def test_used_revoked_expired_and_unknown_links_are_refused_clearly(cast):
    invite(cast, "used@example.com")
    used = invitation_token(invitation_of("used@example.com"))
    assert signup(used, "used@example.com").status_code == 200
    invite(cast, "revoked@example.com")
    revoked = invitation_token(invitation_of("revoked@example.com"))
    r = cast.api("owner").delete(f"/v1/products/{cast.product.slug}/team/revoked@example.com")
    assert r.status_code == 200 and r.json() == {"ok": True}
    invite(cast, "late@example.com")
    Invitation.objects.filter(email="late@example.com").update(expires_at=timezone.now() - timedelta(seconds=1))
    late = invitation_of("late@example.com")
    for token, email, description in [
        (used, "used2@example.com", "This invitation was already used; sign in instead"),
        (revoked, "revoked@example.com", "This invitation was revoked; ask the team for a new one"),
        (invitation_token(late), "late@example.com", "This invitation has expired; ask the team for a new one"),
        ("f" * 40, "nobody@example.com", "This invitation link is not valid"),
        (["x"], "nobody@example.com", "This invitation link is not valid"),
    ]:
        r = signup(token, email)
        assert r.status_code == 400, (email, r.content)
        assert r.json() == {"error": "invalid_invitation", "error_description": description, "field": "invitation"}
    assert not User.objects.filter(email__in=["revoked@example.com", "late@example.com", "nobody@example.com"])
    assert not ProductMembership.objects.filter(user__email="used2@example.com").exists()


@pytest.mark.django_db
def test_a_link_signs_up_only_the_invited_email(cast):
    invite(cast)
    r = signup(invitation_token(invitation_of()), "someone.else@example.com")
    assert r.status_code == 400
    assert r.json()["error_description"] == "This invitation is for newbie@example.com; sign up with that email"
    assert not User.objects.filter(email="someone.else@example.com").exists()
    assert invitation_of().state == "pending"


@pytest.mark.django_db
def test_signing_up_with_the_invited_email_but_without_the_link_joins_nothing(cast, client):
    """Only the mailbox's holder has the link; a stranger who signs up first with that email gets no seat."""
    invite(cast)
    assert signup(None).status_code == 200
    user = User.objects.get(email="newbie@example.com")
    assert not ProductMembership.objects.filter(user=user).exists()
    assert invitation_of().state == "pending"
    # The real invitee opens the link: signed out, it sends them to sign in; signed in, they accept.
    link = f"/signup/?invite={invitation_token(invitation_of())}"
    page = client.get(link)
    assert page.status_code == 200 and b"newbie@example.com already has an account." in page.content
    assert b'href="/login/?next=/signup/%3Finvite%3D' in page.content
    console = signed_in(user)
    page = console.get(link)
    assert page.status_code == 200 and b"Join as Support" in page.content
    r = console.post(link)
    assert r.status_code == 302
    assert ProductMembership.objects.get(product=cast.product, user=user).role == Role.SUPPORT
    assert Invitation.objects.get(email="newbie@example.com").state == "accepted"


@pytest.mark.django_db
def test_a_signed_in_person_with_another_email_cannot_accept(cast):
    invite(cast)
    link = f"/signup/?invite={invitation_token(invitation_of())}"
    console = signed_in(cast.outsider)
    assert b"This invitation is for newbie@example.com, and you are signed in as outsider@example.com" in \
        console.get(link).content
    console.post(link)
    assert not ProductMembership.objects.filter(product=cast.product, user=cast.outsider).exists()
    assert invitation_of().state == "pending"


@pytest.mark.django_db
def test_inviting_an_existing_account_replaces_its_pending_invitation(cast):
    invite(cast)
    signup(None)
    r = invite(cast, role="Developer")
    assert r.status_code == 200 and r.json() == {"ok": True, "invited": {"username": "newbie@example.com",
                                                                         "role": "Developer"}}
    assert Invitation.objects.get(email="newbie@example.com").state == "revoked"
    assert ProductMembership.objects.get(user__email="newbie@example.com").role == Role.DEVELOPER


@pytest.mark.django_db
def test_a_second_invite_while_one_is_pending_is_refused_but_an_expired_one_makes_room(cast):
    invite(cast)
    r = invite(cast)
    assert r.status_code == 400 and r.json()["error_description"] == \
        "newbie@example.com already has a pending invitation to this team; revoke it to invite again"
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert invite(cast, role="View-only").status_code == 200
    assert [(i.role, i.state) for i in Invitation.objects.order_by("pk")] == \
        [(Role.SUPPORT.value, "revoked"), (Role.VIEWER.value, "pending")]
    listed = cast.api("owner").get(f"/v1/products/{cast.product.slug}/team").json()["team"]
    assert [e["role"]["name"] for e in listed if e.get("pending")] == ["View-only"]


@pytest.mark.django_db
@pytest.mark.parametrize("bad, description", [
    ("not-an-email", "username must be a valid email address"),
    ("", "username is required"),
])
def test_an_invite_to_a_malformed_email_is_a_400(cast, bad, description):
    r = invite(cast, bad)
    assert r.status_code == 400 and r.json()["error_description"] == description
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_who_may_invite_and_revoke_is_who_may_invite_a_member(cast):
    """A Support member may not invite (403), an ex-member sees no team (404), View-only may not revoke, an API
    user may not grant a role past its scopes."""
    assert invite(cast, who="support").status_code == 403
    team_remove(principal=Principal.for_user(cast.owner), team=product_team(cast.product),
                username=cast.developer.email)
    assert invite(cast, who="developer").status_code == 404
    assert invite(cast, who="api_with").status_code == 403
    assert not Invitation.objects.exists()
    assert invite(cast, who="admin", role="Administrator").status_code == 200
    for who, status in (("viewer", 403), ("support", 403), ("outsider", 404)):
        r = cast.api(who).delete(f"/v1/products/{cast.product.slug}/team/newbie@example.com")
        assert r.status_code == status, who
    assert invitation_of().state == "pending" and invitation_of().invited_by == cast.admin


@pytest.mark.django_db
def test_revoking_an_unknown_email_is_a_404(cast):
    r = cast.api("owner").delete(f"/v1/products/{cast.product.slug}/team/ghost@example.com")
    assert r.status_code == 404 and r.json()["error_description"] == "ghost@example.com is not a member of this team"


@pytest.mark.django_db
def test_deleting_the_product_deletes_its_invitations(cast):
    team_invite(principal=Principal.for_user(cast.owner), team=product_team(cast.product), username="a@example.com")
    team_invite(principal=Principal.for_user(cast.owner), team=org_team(cast.org), username="b@example.com")
    product_delete(principal=Principal.for_user(cast.owner), product=cast.product)
    assert list(Invitation.objects.values_list("email", flat=True)) == ["b@example.com"]


# --- the console -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_console_team_pages_list_and_revoke_pending_invitations(cast):
    owner = signed_in(cast.owner)
    base = f"/orgs/{cast.org.slug}/team/"
    r = owner.post(base, {"intent": "invite", "username": "later@example.com", "role": "developer"}, follow=True)
    assert r.redirect_chain == [(base, 302)]
    assert ("later@example.com has no account yet: we emailed them a link to sign up and join as Developer."
            in r.content.decode())
    page = owner.get(base).content.decode()
    assert "Pending invitations" in page and "later@example.com" in page
    assert f'action="{base}later@example.com/remove/"' in page
    viewer_page = signed_in(cast.viewer).get(base).content.decode()
    assert "later@example.com" in viewer_page and f'action="{base}later@example.com/remove/"' not in viewer_page
    r = owner.post(f"{base}later@example.com/remove/", follow=True)
    assert "The invitation to later@example.com was revoked." in r.content.decode()
    assert Invitation.objects.get(email="later@example.com").state == "revoked"
    assert "Pending invitations" not in owner.get(base).content.decode()

    product_page = f"/products/{cast.product.slug}/team/"
    owner.post(product_page, {"intent": "invite", "username": "p@example.com", "role": "support"})
    assert "p@example.com" in owner.get(product_page).content.decode()


@pytest.mark.django_db
def test_console_signup_through_an_invitation(cast, client, settings):
    settings.SIGNUP_OPEN = False
    invite(cast, where="org", role="Developer")
    link = f"/signup/?invite={invitation_token(invitation_of())}"
    page = client.get(link)
    assert page.status_code == 200
    text = page.content.decode()
    assert "invited you to join the organization Acme as Developer" in text and 'value="newbie@example.com"' in text
    r = client.post(link, {"email": "newbie@example.com", "password": STRONG}, follow=True)
    assert "You joined the organization Acme as Developer." in r.content.decode()
    assert OrgMembership.objects.get(account=cast.org, user__email="newbie@example.com").role == Role.DEVELOPER
    client.logout()
    again = client.get(link)
    assert again.status_code == 400 and "This invitation was already used; sign in instead" in again.content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_signup_through_an_invitation_in_a_browser(live_server, settings, cast):
    from playwright.sync_api import expect

    base = live_server.url
    settings.SIGNUP_OPEN = False
    settings.PUBLIC_URL = base
    with smtp_receiver(settings) as inbox, running_celery_worker(), browser_tab(SHOTS) as page:
        invite(cast, "kay@example.com", "Support")
        page.goto(only_link(inbox.wait_for("kay@example.com")))
        expect(page.get_by_role("status")).to_contain_text("to join the product Trackers as Support")
        expect(page.get_by_label("Email")).to_have_value("kay@example.com")
        page.get_by_label("Password").fill(STRONG)
        screenshot(page, SHOTS, "signup-invitation")
        page.get_by_role("button", name="Create account").click()
        expect(page.locator(".flash-success")).to_contain_text("You joined the product Trackers as Support.")
    assert ProductMembership.objects.get(product=cast.product, user__email="kay@example.com").role == Role.SUPPORT
