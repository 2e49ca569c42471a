"""The console's accounts on one page: the current account, the page's own account and the switcher's entries
come from one read of the accounts the person may see (console.web.access.visible_accounts)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from console.models import Account
from console.scoping import Principal
from console.web.access import enter_account, visible_accounts
from tests.factories import UserFactory, make_org
from tests.support.console import signed_in

pytestmark = pytest.mark.django_db


def _account_queries(client, url: str) -> tuple[int, str]:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(url)
    assert page.status_code == 200
    return sum('FROM "console_account"' in q["sql"] for q in captured.captured_queries), page.content.decode()


@pytest.mark.parametrize("who", ["owner", "developer"])
def test_a_product_page_reads_the_visible_accounts_once_and_its_switcher_lists_them(cast, who):
    # The org's owner sees the org; the cast's developer holds a seat on the product only, so its page
    # leaves the switcher on their own sandbox. Either way the accounts are read once.
    person = getattr(cast, who)
    client = signed_in(person)
    other = make_org(person, name="Second Org")
    count, html = _account_queries(client, f"/products/{cast.product.slug}/devices/")
    assert count == 1
    assert other.name in html and "Sandbox" in html
    assert (cast.product.account.name in html) is (who == "owner")


def test_an_outsider_still_gets_a_404_and_the_switcher_only_their_own(cast):
    outsider = UserFactory()
    client = signed_in(outsider)
    assert client.get(f"/products/{cast.product.slug}/devices/").status_code == 404
    page = client.get("/devices/").content.decode()
    assert cast.product.account.name not in page


def test_only_an_account_the_person_may_see_is_entered(cast):
    stranger_org = make_org(UserFactory(), name="Not Yours")  # before anything is read, so the list could hold it
    request = RequestFactory().get("/")
    request.principal = Principal.for_user(cast.owner)
    request.session = {}
    request.current_account = None
    assert all(a.pk != stranger_org.pk for a in visible_accounts(request))
    enter_account(request, stranger_org)
    assert request.current_account is None and "account_id" not in request.session
    enter_account(request, cast.product.account)
    assert request.current_account == cast.product.account and request.session["account_id"] == cast.product.account.pk
    assert Account.objects.filter(pk=stranger_org.pk).exists()
