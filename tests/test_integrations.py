"""Integrations through the API (particle-api.md §14): create/list/get/replace/delete on the sandbox and
product forms and the legacy /webhooks forms, what each reply looks like, the validation of every field, and
the pure parts of delivery: matching events to hooks, building the request (mustache, defaults, signature)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

import pytest

from integrations import requests as hookreq
from integrations.delivery import hooks_matching
from integrations.models import Integration
from tests.support.api import Api, user_token
from tests.support.errors import assert_json_error
from tests.support.integrations_receiver import allow_loopback

pytestmark = pytest.mark.django_db

HOOK_ID = re.compile(r"[0-9a-f]{24}")
DEVICE = "0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _loopback(settings):
    allow_loopback(settings)


def hook_body(**extra) -> dict:
    return {"integration_type": "Webhook", "event": "temp", "url": "http://127.0.0.1:9/hook", **extra}


# --- create / list / get / replace / delete ------------------------------------------------------------


def test_sandbox_create_replies_like_particle_and_shows_the_secret_once(cast):
    api = cast.api("owner")
    r = api.post("/v1/integrations", hook_body(name="Temps", requestType="put"))
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["ok"] is True and HOOK_ID.fullmatch(body["id"])
    assert (body["event"], body["name"], body["url"], body["integration_type"], body["requestType"]) == \
        ("temp", "Temps", "http://127.0.0.1:9/hook", "Webhook", "PUT")
    assert body["created_at"].endswith("Z") and body["hookUrl"].endswith(f"/v1/webhooks/{body['id']}")
    secret = body["signing_secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    hook = Integration.objects.get(pk=body["id"])
    assert hook.user == cast.owner and hook.product is None and hook.signing_secret == secret
    got = api.get(f"/v1/integrations/{body['id']}")
    assert got.status_code == 200 and secret not in got.content.decode()
    listed = api.get("/v1/integrations").json()
    assert [h["id"] for h in listed] == [body["id"]] and secret not in json.dumps(listed)


def test_the_same_hook_twice_is_two_hooks_and_lists_carry_integration_type(cast):
    api = cast.api("owner")
    first = api.post("/v1/integrations", hook_body()).json()["id"]
    second = api.post("/v1/integrations", hook_body()).json()["id"]
    assert first != second
    listed = api.get("/v1/integrations").json()
    assert isinstance(listed, list) and [h["id"] for h in listed] == [first, second]
    assert all(h["integration_type"] == "Webhook" for h in listed)


def test_get_answers_the_integration_with_its_logs(cast):
    api = cast.api("owner")
    hook = api.post("/v1/integrations", hook_body(json={"t": "{{PARTICLE_EVENT_VALUE}}"})).json()["id"]
    r = api.get(f"/v1/integrations/{hook}")
    assert r.status_code == 200, r.content
    item = r.json()["integration"]
    assert item["id"] == hook and item["json"] == {"t": "{{PARTICLE_EVENT_VALUE}}"} and item["logs"] == []
    assert item["rejectUnauthorized"] is True and item["noDefaults"] is False


def test_put_replaces_the_whole_config(cast):
    api = cast.api("owner")
    hook = api.post("/v1/integrations", hook_body(json={"a": "1"}, headers={"X-A": "1"}, name="first")).json()["id"]
    r = api.put(f"/v1/integrations/{hook}", hook_body(event="humid", form={"b": "2"}))
    assert r.status_code == 200, r.content
    item = r.json()["integration"]
    assert item["event"] == "humid" and item["form"] == {"b": "2"}
    assert "json" not in item and "headers" not in item and item["name"] is None, item
    stored = Integration.objects.get(pk=hook)
    assert "json" not in stored.config and stored.event == "humid"


def test_delete_is_204_on_integrations_and_ok_true_on_legacy_webhooks(cast):
    api = cast.api("owner")
    one = api.post("/v1/integrations", hook_body()).json()["id"]
    two = api.post("/v1/webhooks", {"event": "temp", "url": "http://127.0.0.1:9/x"}).json()["id"]
    r = api.delete(f"/v1/integrations/{one}")
    assert r.status_code == 204 and r.content == b""
    r = api.delete(f"/v1/webhooks/{two}")
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert not Integration.objects.exists()
    assert api.delete(f"/v1/webhooks/{two}").status_code == 404


def test_legacy_webhook_create_answers_ok_true_and_lists_an_array(cast):
    api = cast.api("owner")
    r = api.post("/v1/webhooks", {"event": "temp", "url": "http://127.0.0.1:9/x", "deviceid": DEVICE})
    assert r.status_code == 201 and r.json()["ok"] is True, r.content
    listed = api.get("/v1/webhooks").json()
    assert listed[0]["deviceID"] == DEVICE and listed[0]["integration_type"] == "Webhook"


def test_product_hooks_belong_to_the_product(cast):
    p = cast.product.pk
    r = cast.api("developer").post(f"/v1/products/{p}/integrations", hook_body())
    assert r.status_code == 201, r.content
    hook = Integration.objects.get(pk=r.json()["id"])
    assert hook.product == cast.product and hook.user is None
    assert cast.api("viewer").get(f"/v1/products/{cast.product.slug}/integrations").json()[0]["id"] == hook.id
    assert cast.api("owner").get("/v1/integrations").json() == []  # not the owner's sandbox hook


def test_another_tenants_hook_is_a_404_like_a_missing_one(cast):
    mine = cast.api("owner").post("/v1/integrations", hook_body()).json()["id"]
    product_hook = cast.api("owner").post(f"/v1/products/{cast.product.pk}/integrations", hook_body()).json()["id"]
    outsider = cast.api("outsider")
    for path in (f"/v1/integrations/{mine}", f"/v1/webhooks/{mine}",
                 f"/v1/products/{cast.outsider_product.pk}/integrations/{product_hook}",
                 f"/v1/products/{cast.product.pk}/integrations/{product_hook}"):
        r = outsider.get(path)
        assert r.status_code == 404, (path, r.content)
        assert_json_error(r)
    assert outsider.delete(f"/v1/integrations/{mine}").status_code == 404
    assert outsider.put(f"/v1/integrations/{mine}", hook_body()).status_code == 404
    assert Integration.objects.count() == 2
    r = outsider.get(f"/v1/integrations/{'f' * 24}")
    assert r.status_code == 404 and outsider.get("/v1/integrations/not-an-id").status_code == 404


def test_viewer_reads_but_may_not_write_product_hooks(cast):
    p = cast.product.pk
    hook = cast.api("owner").post(f"/v1/products/{p}/integrations", hook_body()).json()["id"]
    viewer = cast.api("viewer")
    assert viewer.get(f"/v1/products/{p}/integrations/{hook}").status_code == 200
    for method, path, data in (("POST", f"/v1/products/{p}/integrations", hook_body()),
                               ("PUT", f"/v1/products/{p}/integrations/{hook}", hook_body(event="x")),
                               ("DELETE", f"/v1/products/{p}/integrations/{hook}", None),
                               ("POST", f"/v1/products/{p}/integrations/{hook}/test", {}),
                               ("POST", f"/v1/products/{p}/integrations/{hook}/rotate_secret", {})):
        r = viewer.call(method, path, data)
        assert r.status_code == 403, (method, path, r.content)
    assert Integration.objects.get(pk=hook).event == "temp" and Integration.objects.count() == 1


def test_other_integration_types_are_a_clear_400(cast):
    r = cast.api("owner").post("/v1/integrations", {"integration_type": "GoogleCloudPubSub", "event": "t",
                                                   "topic": "x"})
    body = assert_json_error(r)
    assert r.status_code == 400 and "GoogleCloudPubSub" in body["error_description"] and body["field"] == "integration_type"
    assert not Integration.objects.exists()


def test_rotate_secret_returns_a_new_one_once(cast):
    api = cast.api("owner")
    created = api.post("/v1/integrations", hook_body()).json()
    r = api.post(f"/v1/integrations/{created['id']}/rotate_secret", {})
    assert r.status_code == 200, r.content
    new = r.json()["signing_secret"]
    assert new != created["signing_secret"] and Integration.objects.get(pk=created["id"]).signing_secret == new
    assert new not in api.get(f"/v1/integrations/{created['id']}").content.decode()


def test_sandbox_routes_refuse_tokens_that_are_not_a_person(cast):
    for who in ("product_token", "api_with"):
        r = cast.api(who).get("/v1/integrations")
        assert r.status_code == 400 and assert_json_error(r)["error"] == "unauthorized", (who, r.content)


def test_form_bodies_are_parsed_like_json(cast):
    r = cast.api("owner").call("POST", "/v1/integrations",
                               {"integration_type": "Webhook", "event": "t", "url": "http://127.0.0.1:9/f",
                                "form[a]": "{{PARTICLE_EVENT_VALUE}}", "noDefaults": "true"}, form=True)
    assert r.status_code == 201, r.content
    hook = Integration.objects.get(pk=r.json()["id"])
    assert hook.config["form"] == {"a": "{{PARTICLE_EVENT_VALUE}}"} and hook.config["noDefaults"] is True


# --- malformed configs: a 400 naming the field, nothing written ---------------------------------------------

BAD = [
    ({"event": ""}, "event"),
    ({"event": "x" * 65}, "event"),
    ({"url": ""}, "url"),
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"requestType": "PATCH"}, "requestType"),
    ({"json": {"a": 1}, "form": {"b": "2"}}, "form"),
    ({"json": "{}", "body": "x"}, "body"),
    ({"json": 12}, "json"),
    ({"form": ["a"]}, "form"),
    ({"headers": {"X": {"nested": 1}}}, "headers"),
    ({"query": "a=b"}, "query"),
    ({"auth": {"user": "x"}}, "auth"),
    ({"deviceID": "not-a-device"}, "deviceID"),
    ({"json": {"t": "{{#open}}never closed"}}, "json"),
    ({"body": "{{/stray}}"}, "body"),
    ({"url": "http://127.0.0.1:9/{{unclosed"}, "url"),
    ({"responseTemplate": "{{> partial}}"}, "responseTemplate"),
    ({"responseTopic": "{{#a}}{{/b}}"}, "responseTopic"),
    ({"noDefaults": "perhaps"}, "noDefaults"),
    ({"rejectUnauthorized": "nope"}, "rejectUnauthorized"),
]


@pytest.mark.parametrize("change,field", BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_malformed_configs_are_a_400_naming_the_field(cast, change, field):
    api = cast.api("owner")
    for path in ("/v1/integrations", f"/v1/products/{cast.product.pk}/integrations", "/v1/webhooks"):
        r = api.post(path, hook_body(**change))
        body = assert_json_error(r)
        assert r.status_code == 400 and body["field"] == field, (path, r.content)
        assert field in body["error_description"]
    assert not Integration.objects.exists()


def test_a_malformed_put_leaves_the_hook_as_it_was(cast):
    api = cast.api("owner")
    hook = api.post("/v1/integrations", hook_body(json={"a": "1"})).json()["id"]
    r = api.put(f"/v1/integrations/{hook}", hook_body(json={"a": "{{#x}}"}))
    assert r.status_code == 400 and assert_json_error(r)["field"] == "json"
    assert Integration.objects.get(pk=hook).config["json"] == {"a": "1"}


def test_a_body_that_is_not_an_object_is_a_json_400(cast):
    r = cast.api("owner").client.post("/v1/integrations", "[1,2]", content_type="application/json",
                                      HTTP_AUTHORIZATION=f"Bearer {cast.tokens['owner']}")
    assert r.status_code == 400 and assert_json_error(r)
    r = cast.api("owner").client.post("/v1/integrations", "{bad json", content_type="application/json",
                                      HTTP_AUTHORIZATION=f"Bearer {cast.tokens['owner']}")
    assert r.status_code == 400 and assert_json_error(r)


def test_private_address_targets_are_refused_unless_allowed(cast, settings):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS = []
    api = cast.api("owner")
    for url in ("http://127.0.0.1/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x",
                "http://192.168.0.1/x", "http://0.0.0.0/x"):
        r = api.post("/v1/integrations", hook_body(url=url))
        assert r.status_code == 400 and assert_json_error(r)["field"] == "url", (url, r.content)
    assert api.post("/v1/integrations", hook_body(url="https://93.184.215.14/x")).status_code == 201
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = True
    assert api.post("/v1/integrations", hook_body(url="http://10.1.2.3/x")).status_code == 201


# --- matching (pure) ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    """A bus event's fields as the consumer reads them (devices/events.py BusEvent)."""
    id: str
    name: str
    data: str = ""
    coreid: str = DEVICE
    published_at: str = "2026-12-02T00:00:00.000Z"
    ttl: int = 60
    product_id: int | None = None
    user_id: int | None = None
    hook: bool = False


def _hook(**kw) -> Integration:
    base = {"id": "a" * 24, "event": "temp", "device_id": "", "disabled": False, "config": {}}
    base.update(kw)
    return Integration(**base)


def test_matching_follows_prefix_device_owner_and_hook_rules():
    product_hook = _hook(id="1" * 24, product_id=7, event="temp")
    sandbox_hook = _hook(id="2" * 24, user_id=3, event="te")
    device_hook = _hook(id="3" * 24, user_id=3, event="temp", device_id="f" * 24)
    off = _hook(id="4" * 24, user_id=3, event="t", disabled=True)
    hooks = [product_hook, sandbox_hook, device_hook, off]
    cases = [
        (Ev("1", "temperature", product_id=7, user_id=3), {product_hook.id, sandbox_hook.id}),  # both fire
        (Ev("2", "Temperature", product_id=7, user_id=3), set()),  # case-sensitive
        (Ev("3", "temp", product_id=8, user_id=None), set()),  # another product
        (Ev("4", "temp", product_id=None, user_id=3), {sandbox_hook.id}),
        (Ev("5", "temp", coreid="f" * 24, user_id=3), {sandbox_hook.id, device_hook.id}),
        (Ev("6", "temp", product_id=7, user_id=3, hook=True), set()),  # hooks never trigger hooks
        (Ev("7", "tem", product_id=7, user_id=4), set()),
    ]
    for event, want in cases:
        got = {h.id for e, h in hooks_matching([event], hooks)}
        assert got == want, (event, got)


# --- building the request (pure) ---------------------------------------------------------------------------

EVENT = {"id": "1733100000000-0", "name": "temp/kitchen", "data": '{"t": 21.5, "room": "<k>", "arr": [{"v": 9}]}',
         "coreid": DEVICE, "published_at": "2026-12-02T00:00:00.000Z", "ttl": 60, "product_id": 1001, "user_id": 5}


def build(config: dict, *, product_hook=False, event=EVENT) -> hookreq.HookRequest:
    config = {"requestType": "POST", "url": "http://127.0.0.1:9/h", **config}
    return hookreq.build_request(config=config, event=event, product_hook=product_hook, secret="s3cret",
                                 timestamp=1700000000)


def test_default_payload_is_form_encoded_with_particles_user_agent():
    req = build({})
    assert req.method == "POST" and req.headers["User-Agent"] == "ParticleBot/1.1 (https://docs.particle.io/webhooks)"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert {k: v[0] for k, v in parse_qs(req.body.decode()).items()} == {
        "event": "temp/kitchen", "data": EVENT["data"], "coreid": DEVICE, "published_at": EVENT["published_at"]}


def test_get_puts_the_defaults_in_the_query():
    req = build({"requestType": "GET", "url": "http://127.0.0.1:9/h?x=1", "query": {"q": "{{t}}"}})
    assert req.body == b""
    query = parse_qs(req.url.split("?", 1)[1])
    assert query["x"] == ["1"] and query["q"] == ["21.5"] and query["event"] == ["temp/kitchen"]


def test_json_templates_see_particles_variables_and_the_datas_keys():
    req = build({"json": {"t": "{{t}}", "room": "{{room}}", "raw": "{{{room}}}", "v": "{{arr.0.v}}",
                          "dev": "{{PARTICLE_DEVICE_ID}}", "old": "{{{SPARK_EVENT_VALUE}}}", "id": "{{PARTICLE_EVENT_ID}}",
                          "pid": "{{PRODUCT_ID}}", "name": "{{PARTICLE_EVENT_NAME}}",
                          "{{#t}}has_t{{/t}}": "yes", "none": "{{^missing}}empty{{/missing}}"}})
    body = json.loads(req.body)
    assert body["t"] == "21.5" and body["room"] == "&lt;k&gt;" and body["raw"] == "<k>" and body["v"] == "9"
    assert body["dev"] == DEVICE and body["old"] == EVENT["data"] and body["id"] == EVENT["id"]
    assert body["pid"] == "1001" and body["name"] == "temp/kitchen" and body["has_t"] == "yes" and body["none"] == "empty"
    assert body["event"] == "temp/kitchen" and body["coreid"] == DEVICE  # defaults merged in
    assert req.headers["Content-Type"] == "application/json"


def test_no_defaults_sends_only_what_the_template_says():
    req = build({"json": {"only": "{{t}}"}, "noDefaults": True})
    assert json.loads(req.body) == {"only": "21.5"}
    req = build({"noDefaults": True})
    assert req.body == b""


def test_string_json_template_body_form_headers_auth_and_url():
    req = build({"json": '{"value": {{t}}, "b64": "{{PARTICLE_EVENT_BASE64}}"}', "noDefaults": True,
                 "headers": {"X-Device": "{{PARTICLE_DEVICE_ID}}"}, "auth": {"username": "u", "password": "{{room}}"},
                 "url": "http://127.0.0.1:9/h/{{PARTICLE_DEVICE_ID}}"})
    body = json.loads(req.body)
    assert body["value"] == 21.5
    assert json.loads(base64.b64decode(body["b64"]))["event"] == "temp/kitchen"
    assert req.headers["X-Device"] == DEVICE and req.url.endswith(f"/h/{DEVICE}")
    assert base64.b64decode(req.headers["Authorization"].split()[1]) == b"u:&lt;k&gt;"
    req = build({"body": "raw {{{room}}}"})
    assert req.body == b"raw <k>"
    req = build({"form": {"temperature": "{{t}}"}})
    form = parse_qs(req.body.decode())
    assert form["temperature"] == ["21.5"] and form["event"] == ["temp/kitchen"]


def test_product_hooks_also_see_product_variables_and_their_default_topic():
    ctx_req = build({"json": {"u": "{{PRODUCT_USER_ID}}", "v": "{{PRODUCT_VERSION}}"}, "noDefaults": True},
                    product_hook=True)
    assert json.loads(ctx_req.body) == {"u": "", "v": ""}
    assert hookreq.response_topic({}, EVENT, product_hook=True) == f"{DEVICE}/hook-response/temp/kitchen"
    assert hookreq.response_topic({}, EVENT, product_hook=False) == "hook-response/temp/kitchen"
    assert hookreq.error_topic({}, EVENT, product_hook=False) == "hook-error/temp/kitchen"
    assert hookreq.response_topic({"responseTopic": "r/{{PARTICLE_EVENT_NAME}}"}, EVENT, product_hook=True) == \
        "r/temp/kitchen"


def test_response_template_reads_the_parsed_response():
    out = hookreq.response_data({"responseTemplate": "{{reading.value}} for {{PARTICLE_DEVICE_ID}}"}, EVENT,
                                b'{"reading": {"value": 42}}', product_hook=False)
    assert out == f"42 for {DEVICE}"
    assert hookreq.response_data({}, EVENT, b"plain", product_hook=False) == "plain"


def test_chunks_are_512_bytes_of_the_first_100_kb_and_never_split_a_character():
    data = "é" * 300  # 600 bytes
    pieces = hookreq.chunks(data)
    assert [len(p.encode()) for p in pieces] == [512, 88] and "".join(pieces) == data
    assert sum(len(p.encode()) for p in hookreq.chunks("x" * 200_000)) == 100_000


def test_signature_verifies_with_the_secret_and_the_event_id_is_stable():
    first = build({"json": {"a": "1"}})
    again = hookreq.build_request(config={"url": "http://127.0.0.1:9/h", "json": {"a": "1"}}, event=EVENT,
                                  product_hook=False, secret="s3cret", timestamp=1700000100)
    assert first.headers["X-Cyan-Event-Id"] == again.headers["X-Cyan-Event-Id"] == EVENT["id"]
    assert hookreq.signature_valid("s3cret", first.headers["X-Cyan-Timestamp"], first.body,
                                   first.headers["X-Cyan-Signature"])
    assert not hookreq.signature_valid("other", first.headers["X-Cyan-Timestamp"], first.body,
                                       first.headers["X-Cyan-Signature"])
    assert not hookreq.signature_valid("s3cret", first.headers["X-Cyan-Timestamp"], first.body + b" ",
                                       first.headers["X-Cyan-Signature"])
    # a header a config names cannot forge ours
    forged = build({"headers": {"X-Cyan-Signature": "sha256=0", "x-cyan-event-id": "mine"}})
    assert forged.headers["X-Cyan-Event-Id"] == EVENT["id"] and forged.headers["X-Cyan-Signature"] != "sha256=0"


def test_a_json_template_that_does_not_render_to_json_fails_the_build():
    with pytest.raises(hookreq.TemplateFailed):
        build({"json": "{{PARTICLE_EVENT_NAME}} is not json"})


def test_other_users_tokens_do_not_see_each_others_sandbox_hooks(cast):
    mine = cast.api("owner").post("/v1/integrations", hook_body()).json()["id"]
    other = Api(user_token(cast.developer))
    assert other.get("/v1/integrations").json() == []
    assert other.get(f"/v1/integrations/{mine}").status_code == 404


# --- the consumer's cost, the retry schedule ----------------------------------------------------------------


def test_matching_a_batch_costs_one_query_and_bulk_inserts(cast, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from devices import events as bus
    from integrations.delivery import BATCH, events_consume
    from integrations.models import Delivery

    api = cast.api("owner")
    for prefix in ("temp", "te", "humid"):
        api.post("/v1/integrations", hook_body(event=prefix))
    api.post(f"/v1/products/{cast.product.pk}/integrations", hook_body(event="temp"))
    batch = [bus.BusEvent(id=f"1-{i}", name="temperature" if i % 2 else "humidity", data="1", coreid=DEVICE,
                          published_at="2026-12-02T00:00:00.000Z", ttl=60, product_id=cast.product.pk,
                          user_id=cast.owner.pk, customer_id=None, org_id=None, hook=False, origin="device")
             for i in range(200)]
    events_consume(batch[:1])  # builds the owners-with-hooks set (integrations/owners.py) once
    Delivery.objects.all().delete()
    with django_capture_on_commit_callbacks() as callbacks, CaptureQueriesContext(connection) as captured:
        ids = events_consume(batch)
    kinds = [q["sql"].lstrip().split()[0].upper() for q in captured.captured_queries]
    assert kinds.count("SELECT") == 1, captured.captured_queries  # the batch's hooks, once
    # the rest is the bulk INSERT (SQLite splits it by its parameter limit) and its savepoints
    assert set(kinds) <= {"SELECT", "INSERT", "SAVEPOINT", "RELEASE"} and kinds.count("INSERT") <= len(ids) // 50, kinds
    # 100 odd events match temp, te (sandbox) and temp (product); 100 even ones match humid
    assert len(ids) == Delivery.objects.count() == 100 * 3 + 100
    assert len(callbacks) == 400 // BATCH  # one task per BATCH deliveries


def test_the_same_events_handed_over_twice_keep_one_delivery_per_hook_and_event(cast, django_capture_on_commit_callbacks):
    from devices import events as bus
    from integrations.delivery import events_consume
    from integrations.models import Delivery

    hook = cast.api("owner").post("/v1/integrations", hook_body(event="temp")).json()
    batch = [bus.BusEvent(id=f"7-{i}", name="temperature", data=f'{{"n":{i}}}', coreid=DEVICE,
                          published_at="2026-12-02T00:00:00.000Z", ttl=60, product_id=None,
                          user_id=cast.owner.pk, customer_id=None, org_id=None, hook=False, origin="device")
             for i in range(5)]
    with django_capture_on_commit_callbacks(execute=False):
        first = events_consume(batch[:3])
        second = events_consume(batch)  # a publisher run again after a crash, with two more events
    rows = Delivery.objects.filter(integration_id=hook["id"])
    assert rows.count() == 5 and len(first) == 3
    assert sorted(second) == sorted(rows.filter(event_id__in=["7-3", "7-4"]).values_list("id", flat=True))
    got = rows.get(event_id="7-4")
    assert got.state == "pending" and got.attempts == 0 and got.event["data"] == '{"n":4}'
    assert got.event["coreid"] == DEVICE and got.event["user_id"] == cast.owner.pk and got.next_attempt_at


def test_retry_delays_grow_exponentially_with_jitter_and_a_cap(settings):
    from integrations.delivery import retry_delay

    settings.INTEGRATIONS_RETRY_BASE_SECONDS = 10
    settings.INTEGRATIONS_RETRY_MAX_SECONDS = 100
    for attempts, full in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)):
        delays = {retry_delay(attempts) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays), (attempts, sorted(delays)[:3])
        assert len(delays) > 40, "no jitter"


def test_deleting_a_product_or_a_person_takes_their_hooks_and_deliveries(cast):
    from django.utils import timezone

    from console.scoping import Principal
    from console.services.users import user_remove
    from integrations.models import Delivery
    from products.services import product_delete
    from tests.factories import UserFactory, make_product
    from console.services.users import sandbox_of

    maker = UserFactory(email="maker@example.com")
    product = make_product(sandbox_of(maker), name="Hobby", platform_id=13)
    api = Api(user_token(maker))
    product_hook = api.post(f"/v1/products/{product.pk}/integrations", hook_body()).json()["id"]
    own_hook = api.post("/v1/integrations", hook_body()).json()["id"]
    for hook in (product_hook, own_hook):
        Delivery.objects.create(integration_id=hook, event_id="1-0", event={}, next_attempt_at=timezone.now())
    product_delete(principal=Principal.for_user(maker), product=product)
    assert list(Integration.objects.values_list("pk", flat=True)) == [own_hook]
    user_remove(user=maker, by=Principal.for_user(maker))
    assert not Integration.objects.exists() and not Delivery.objects.exists()


def test_publishers_without_hooks_cost_no_query_and_a_new_hook_is_seen_at_once(cast, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from devices import events as bus
    from integrations.delivery import events_consume
    from integrations.models import Delivery

    def ev(i: int):
        return bus.BusEvent(id=f"2-{i}", name="temp", data="1", coreid=DEVICE, published_at="2026-12-02T00:00:00.000Z",
                            ttl=60, product_id=cast.product.pk, user_id=cast.developer.pk, customer_id=None,
                            org_id=None, hook=False, origin="device")

    assert events_consume([ev(0)]) == []  # builds the set: nobody has a hook
    with CaptureQueriesContext(connection) as captured:
        assert events_consume([ev(1)]) == []
    assert captured.captured_queries == []
    with django_capture_on_commit_callbacks(execute=True):
        made = cast.api("developer").post("/v1/integrations", hook_body())
    assert made.status_code == 201
    assert len(events_consume([ev(2)])) == 1  # the create put the developer in the set after commit
    with django_capture_on_commit_callbacks(execute=True):
        cast.api("developer").delete(f"/v1/integrations/{made.json()['id']}")
    with CaptureQueriesContext(connection) as captured:
        assert events_consume([ev(3)]) == []
    assert captured.captured_queries == [] and not Delivery.objects.exists()
    # a lost set (a Redis restart) is rebuilt from the database, not read as "nobody"
    with django_capture_on_commit_callbacks(execute=True):
        cast.api("owner").post(f"/v1/products/{cast.product.pk}/integrations", hook_body())
    from devices import presence

    presence.client().delete(f"{presence.prefix()}:hookowners", f"{presence.prefix()}:hookowners:built")
    assert len(events_consume([ev(4)])) == 1
