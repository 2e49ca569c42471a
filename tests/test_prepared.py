"""console/prepared.py: a query compiled once answers exactly what the same queryset answers through the ORM."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.models import AccessToken, hash_secret
from console.prepared import Prepared
from console.services import tokens as token_services
from devices.models import Device
from products.models import Product
from tests.factories import UserFactory, make_org, make_product
from tests.support.fleet import import_devices


def _product(name: str = "Trackers"):
    owner = UserFactory()
    return owner, make_product(make_org(owner), name=name)


def _device(product, **values) -> Device:
    device_id = import_devices(product)[0]
    Device.objects.filter(pk=device_id).update(**values)
    return Device.objects.get(pk=device_id)

pytestmark = pytest.mark.django_db


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_a_device_with_its_relations_is_built_as_the_orm_builds_it():
    owner, product = _product()
    device = _device(product, owner=owner, name="truck-1", functions=["reset", "echo"],
                     variables={"temp": "double"}, last_heard=timezone.now(), online=True)
    query = Prepared(lambda p: Device.objects.select_related("owner", "product", "product__account")
                     .filter(product_id=p.integer("product"), pk=p.text("id")))

    found = query.first(product=product.pk, id=device.pk)
    expected = Device.objects.select_related("owner", "product", "product__account").get(pk=device.pk)

    assert _fields(found) == _fields(expected)
    assert found.variables == {"temp": "double"} and found.functions == ["reset", "echo"]  # JSON converted
    assert found.last_heard == expected.last_heard and found.last_heard.tzinfo is not None
    # The relations came with the row: reading them costs no query.
    with CaptureQueriesContext(connection) as queries:
        assert _fields(found.owner) == _fields(expected.owner)
        assert _fields(found.product.account) == _fields(expected.product.account)
    assert len(queries) == 0
    assert found._state.adding is False and found._state.db == "default"


def test_each_run_takes_its_own_values_and_misses_are_none():
    owner, one = _product("One")
    two = make_product(one.account, name="Two")
    query = Prepared(lambda p: Product.objects.select_related("account").filter(slug=p.text("slug")))
    assert query.first(slug=one.slug).pk == one.pk
    assert query.first(slug=two.slug).pk == two.pk
    assert query.first(slug="no-such-product") is None
    by_pk = Prepared(lambda p: Product.objects.filter(pk=p.integer("pk")))
    assert by_pk.first(pk=two.pk).slug == two.slug
    assert by_pk.first(pk=999_999) is None


def test_it_is_one_query_seen_by_djangos_cursor_and_compiled_once():
    owner = UserFactory()
    issued = token_services.token_issue(kind=AccessToken.Kind.USER, user=owner, client_name="test")
    query = Prepared(lambda p: AccessToken.objects.select_related("user").filter(token_hash=p.text("hash")))
    with CaptureQueriesContext(connection) as queries:
        token = query.first(hash=hash_secret(issued.access_token))
        again = query.first(hash=hash_secret(issued.access_token))
    assert len(queries) == 2 and "token_hash" in queries[0]["sql"]
    assert token.user.pk == owner.pk and again.pk == token.pk
    assert len(query._plans) == 1


def test_constants_in_the_queryset_stay_constants():
    _owner, product = _product()
    kept = _device(product, name="kept")
    _device(product, name="denied", denied=True)
    query = Prepared(lambda p: Device.objects.filter(product_id=p.integer("product"), denied=False, name=p.text("n")))
    assert query.first(product=product.pk, n="kept").pk == kept.pk
    assert query.first(product=product.pk, n="denied") is None


def test_annotations_are_set_on_the_instance():
    _owner, product = _product()
    query = Prepared(lambda p: Product.objects.annotate(twice=F("pk") * 2).filter(pk=p.integer("pk")))
    assert query.first(pk=product.pk).twice == product.pk * 2


@pytest.mark.parametrize("build, words", [
    (lambda p: Product.objects.filter(name__icontains=p.text("q")), "changed the value"),
    (lambda p: Product.objects.filter(pk__in=[p.integer("a"), 5]).filter(slug=p.text("a")), "named twice"),
    (lambda p: Product.objects.values("pk").filter(pk=p.integer("pk")), "plain model queryset"),
    (lambda p: Product.objects.prefetch_related("devices").filter(pk=p.integer("pk")), "plain model queryset"),
    (lambda p: Product.objects.filter(pk=p.integer("pk"))[:3], "LIMIT"),
])
def test_what_cannot_be_prepared_is_refused_when_first_run(build, words):
    query = Prepared(build)
    with pytest.raises(ImproperlyConfigured, match=words):
        query.first(q="x", a=1, pk=1)


def test_a_missing_value_is_an_error_not_a_placeholder_sent_to_the_database():
    query = Prepared(lambda p: Product.objects.filter(slug=p.text("slug")))
    with pytest.raises(TypeError, match="slug"):
        query.first()
