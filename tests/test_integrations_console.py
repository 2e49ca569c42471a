"""The console's integration pages: list, create and edit from a form or JSON, the hook's page with its
signing secret shown once, the test button against a real receiver, the recent requests, the 30-day counts,
dead letters with replay, rotate and delete; who sees which control and who is refused."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import Delivery, DeliveryDay, Integration
from tests.support.console import signed_in
from tests.support.integrations_receiver import Step, allow_loopback, running_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback(settings):
    allow_loopback(settings)


def base(cast, product: bool) -> str:
    return f"/products/{cast.product.slug}/integrations/" if product else "/integrations/"


FORM = {"mode": "form", "name": "Readings", "event": "temp", "url": "http://127.0.0.1:9/in", "request_type": "PUT",
        "body_kind": "json", "body_template": '{"t": "{{PARTICLE_EVENT_VALUE}}"}', "headers": '{"X-Key": "k"}',
        "reject_unauthorized": "on"}


@pytest.mark.parametrize("product", [False, True], ids=["sandbox", "product"])
def test_create_from_the_form_shows_the_secret_once(cast, product):
    client = signed_in(cast.owner)
    r = client.post(base(cast, product) + "new/", FORM)
    assert r.status_code == 302, r.content.decode()[:2000]
    hook = Integration.objects.get()
    assert (hook.product_id is not None) == product and hook.user_id == (None if product else cast.owner.pk)
    assert hook.config["requestType"] == "PUT" and hook.config["json"] == {"t": "{{PARTICLE_EVENT_VALUE}}"}
    assert hook.config["headers"] == {"X-Key": "k"} and hook.config["rejectUnauthorized"] is True
    page = client.get(r["Location"])
    assert page.status_code == 200 and hook.signing_secret in page.content.decode()
    again = client.get(r["Location"]).content.decode()
    assert hook.signing_secret not in again and "Readings" in again
    listed = client.get(base(cast, product)).content.decode()
    assert hook.id in listed and "http://127.0.0.1:9/in" in listed


def test_create_from_json_and_edit_replaces_the_config(cast):
    client = signed_in(cast.owner)
    body = {"event": "humid", "url": "http://127.0.0.1:9/j", "form": {"h": "{{PARTICLE_EVENT_VALUE}}"}, "noDefaults": True}
    r = client.post("/integrations/new/", {"mode": "json", "raw_json": json.dumps(body), "request_type": "POST",
                                            "body_kind": "defaults"})
    assert r.status_code == 302, r.content.decode()[:2000]
    hook = Integration.objects.get()
    assert hook.config["form"] == {"h": "{{PARTICLE_EVENT_VALUE}}"} and hook.config["noDefaults"] is True
    edit = client.get(f"/integrations/{hook.id}/edit/")
    assert edit.status_code == 200 and "humid" in edit.content.decode()
    r = client.post(f"/integrations/{hook.id}/edit/", {**FORM, "event": "temp2", "body_kind": "body",
                                                       "body_template": "v={{PARTICLE_EVENT_VALUE}}"})
    assert r.status_code == 302
    hook.refresh_from_db()
    assert hook.event == "temp2" and hook.config["body"] == "v={{PARTICLE_EVENT_VALUE}}" and "form" not in hook.config


@pytest.mark.parametrize("change,field_text", [
    ({"body_template": '{"t": "{{#open}}"}'}, "json is not a valid mustache template"),
    ({"url": "ftp://x"}, "url must be an http"),
    ({"event": ""}, "event is required"),
    ({"headers": "{not json"}, "Not valid JSON"),
])
def test_bad_input_is_shown_on_the_form_and_saves_nothing(cast, change, field_text):
    r = signed_in(cast.owner).post("/integrations/new/", {**FORM, **change})
    assert r.status_code == 400 and field_text in r.content.decode()
    assert not Integration.objects.exists()
    r = signed_in(cast.owner).post("/integrations/new/", {"mode": "json", "raw_json": '{"event": "t", "url": "ftp://x"}',
                                                        "request_type": "POST", "body_kind": "defaults"})
    assert r.status_code == 400 and "url" in r.content.decode() and not Integration.objects.exists()


def _product_hook(cast) -> Integration:
    r = signed_in(cast.owner).post(base(cast, True) + "new/", FORM)
    assert r.status_code == 302
    return Integration.objects.get()


def test_viewer_reads_but_gets_no_controls_and_is_refused_writes(cast):
    hook = _product_hook(cast)
    viewer = signed_in(cast.viewer)
    listed = viewer.get(base(cast, True))
    assert listed.status_code == 200 and hook.id in listed.content.decode() and "New integration" not in listed.content.decode()
    page = viewer.get(f"{base(cast, True)}{hook.id}/").content.decode()
    assert "Send a test event" not in page and "Delete integration" not in page and hook.signing_secret not in page
    for path in ("new/", f"{hook.id}/edit/", f"{hook.id}/test/", f"{hook.id}/rotate/", f"{hook.id}/delete/",
                 f"{hook.id}/replay/"):
        assert viewer.post(base(cast, True) + path, FORM).status_code == 403, path
    assert Integration.objects.get().signing_secret == hook.signing_secret


def test_outsiders_and_other_people_get_404(cast):
    hook = _product_hook(cast)
    outsider = signed_in(cast.outsider)
    for path in ("", "new/", f"{hook.id}/", f"{hook.id}/edit/"):
        assert outsider.get(base(cast, True) + path).status_code == 404, path
    assert outsider.post(f"{base(cast, True)}{hook.id}/delete/").status_code == 404
    mine = signed_in(cast.developer)
    mine.post("/integrations/new/", FORM)
    own = Integration.objects.get(user=cast.developer)
    assert signed_in(cast.admin).get(f"/integrations/{own.id}/").status_code == 404
    assert Integration.objects.count() == 2


def test_the_hook_page_tests_replays_rotates_and_deletes(cast):
    with running_receiver() as rx:
        rx.script("/in", Step(201, "thanks"))
        client = signed_in(cast.owner)
        client.post("/integrations/new/", {**FORM, "url": rx.url("/in")})
        hook = Integration.objects.get()
        page_url = f"/integrations/{hook.id}/"
        r = client.post(page_url + "test/")
        assert r.status_code == 302 and len(rx.at("/in")) == 1
        page = client.get(page_url).content.decode()
        assert 'data-test-result="pass"' in page and "thanks" in page
        assert "X-Cyan-Event-Id" in page and "Recent successes" in page  # the test's request, shown in full
        DeliveryDay.objects.create(integration=hook, day=timezone.now().date(), success=3, failure=1, sleep=2)
        dead = Delivery.objects.create(integration=hook, event_id="5-0", state="dead", attempts=6,
                                       event={"id": "5-0", "name": "temp", "data": "1", "coreid": "x", "published_at": ""},
                                       next_attempt_at=timezone.now(), finished_at=timezone.now() - timedelta(minutes=1),
                                       last_error="error status 500 from 127.0.0.1")
        page = client.get(page_url).content.decode()
        assert f'data-day="{timezone.now().date().isoformat()}"' in page and "error status 500 from 127.0.0.1" in page
        r = client.post(page_url + "replay/", {"delivery": str(dead.pk)})
        assert r.status_code == 302 and Delivery.objects.get(pk=dead.pk).state == "pending"
        old = hook.signing_secret
        client.post(page_url + "rotate/")
        hook.refresh_from_db()
        assert hook.signing_secret != old and hook.signing_secret in client.get(page_url).content.decode()
        r = client.post(page_url + "delete/")
        assert r.status_code == 302 and not Integration.objects.exists()


def test_the_navigation_links_to_the_integrations_pages(cast):
    client = signed_in(cast.owner)
    assert 'href="/integrations/"' in client.get("/integrations/").content.decode()
    page = client.get(f"/products/{cast.product.slug}/integrations/").content.decode()
    assert f'href="/products/{cast.product.slug}/integrations/"' in page
