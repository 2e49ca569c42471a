"""What an import reports is what was in the file: spaces do not split a line into two entries, and a Wi-Fi
product's import page and report say nothing about SIM cards."""

from __future__ import annotations

import pytest

from devices.identifiers import split_lines
from devices.models import ImportJob
from tests.factories import UserFactory, make_org, make_product
from tests.support.console import signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("payload, expected", [
    ("hello world\nabc\ndef", [(1, "hello world"), (2, "abc"), (3, "def")]),
    ("a, b;c\td", [(1, "a"), (1, "b"), (1, "c"), (1, "d")]),
    ("  e00fce68  \n\n# a comment\nf00 # trailing", [(1, "e00fce68"), (4, "f00")]),
    ("x,, ,y", [(1, "x"), (1, "y")]),
    ("one two,three", [(1, "one two"), (1, "three")]),
])
def test_split_lines(payload, expected):
    assert split_lines(payload) == expected


def _product(platform_id: int):
    owner = UserFactory()
    return owner, make_product(make_org(owner), platform_id=platform_id)


def test_a_wifi_product_import_page_offers_no_sims():
    owner, product = _product(12)  # Argon: Wi-Fi
    assert not product.platform.is_cellular
    html = signed_in(owner).get(f"/products/{product.slug}/devices/import/").content.decode()
    assert "Import and activate SIM cards" not in html and "SIM cards are activated" not in html
    assert 'name="import_sims"' not in html


def test_a_cellular_product_import_page_offers_sims():
    owner, product = _product(13)  # Boron: cellular
    assert product.platform.is_cellular
    html = signed_in(owner).get(f"/products/{product.slug}/devices/import/").content.decode()
    assert "Import and activate SIM cards" in html and 'name="import_sims"' in html


def test_a_wifi_import_report_counts_entries_and_says_nothing_of_sims():
    owner, product = _product(12)
    client = signed_in(owner)
    response = client.post(f"/products/{product.slug}/devices/import/", {"ids": "hello world\nabc\ndef",
                                                                         "import_sims": "on"})
    assert response.status_code == 302
    job = ImportJob.objects.get(product=product)
    assert job.options["import_sims"] is False and job.total == 3
    html = client.get(response["Location"]).content.decode()
    assert "3 entries" in html and "SIM cards imported" not in html
