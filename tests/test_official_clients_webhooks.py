"""Webhooks and integrations through the official npm clients against a live Cyan server
(particle-api.md Part B §1.7, §3.2-3.3): particle-api-js@12.0.3's createWebhook/listWebhooks/deleteWebhook and
createIntegration/listIntegrations/editIntegration/deleteIntegration, and particle-cli@3.43.1's
`webhook create/list/delete` (which needs `ok:true` on create and delete: a 204 makes its delete hang)."""

from __future__ import annotations

import json
import re

import pytest

from integrations.models import Integration
from tests.factories import UserFactory, make_org, make_product
from tests.support.clients import api_login, apijs, apijs_batch, failed, ok, show
from tests.support.env import need, node_available
from tests.support.integrations_receiver import allow_loopback

pytestmark = [pytest.mark.clients, pytest.mark.django_db(transaction=True)]

HOOK_ID = re.compile(r"\b[0-9a-f]{24}\b")
DEVICE = "0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _loopback(settings):
    allow_loopback(settings)


def test_apijs_webhooks_sandbox_and_product(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers", platform_id=13)
    token = api_login(base_url, owner.email)
    made = ok(apijs(base_url, "createWebhook", {"event": "temp", "url": "http://127.0.0.1:9/a", "device": DEVICE,
                                                "auth": token}), 201)
    assert made["ok"] is True and HOOK_ID.fullmatch(made["id"]) and made["hookUrl"].endswith(made["id"])
    hook = Integration.objects.get(pk=made["id"])
    assert (hook.user, hook.device_id, hook.config["requestType"]) == (owner, DEVICE, "POST")
    in_product = ok(apijs(base_url, "createWebhook", {"event": "t2", "url": "http://127.0.0.1:9/b",
                                                      "product": product.slug, "auth": token}), 201)
    listed = ok(apijs(base_url, "listWebhooks", {"auth": token}))
    assert [h["id"] for h in listed] == [made["id"]] and listed[0]["deviceID"] == DEVICE
    listed = ok(apijs(base_url, "listWebhooks", {"product": product.pk, "auth": token}))
    assert [h["id"] for h in listed] == [in_product["id"]]
    body = ok(apijs(base_url, "deleteWebhook", {"hookId": made["id"], "auth": token}))
    assert body == {"ok": True}
    ok(apijs(base_url, "deleteWebhook", {"hookId": in_product["id"], "product": product.slug, "auth": token}))
    assert not Integration.objects.exists()
    err = failed(apijs(base_url, "deleteWebhook", {"hookId": made["id"], "auth": token}), 404)
    assert "not found" in err["error_description"]


def test_apijs_integrations_crud(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers", platform_id=13)
    token = api_login(base_url, owner.email)
    settings = {"integration_type": "Webhook", "url": "http://127.0.0.1:9/i", "requestType": "POST",
                "json": {"v": "{{{PARTICLE_EVENT_VALUE}}}"}}
    made = ok(apijs(base_url, "createIntegration", {"event": "temp", "settings": settings, "deviceId": DEVICE,
                                                    "product": product.pk, "auth": token}), 201)
    assert made["integration_type"] == "Webhook" and made["event"] == "temp" and made["deviceID"] == DEVICE
    results = apijs_batch(base_url, [
        {"method": "listIntegrations", "args": {"product": product.pk, "auth": token}},
        {"method": "editIntegration", "args": {"integrationId": made["id"], "event": "humid", "product": product.pk,
                                               "settings": {"integration_type": "Webhook", "url": "http://127.0.0.1:9/j",
                                                            "form": {"h": "{{PARTICLE_EVENT_VALUE}}"}},
                                               "auth": token}},
        {"method": "deleteIntegration", "args": {"integrationId": made["id"], "product": product.pk, "auth": token}},
        {"method": "listIntegrations", "args": {"product": product.pk, "auth": token}},
    ])
    listed = ok(results[0])
    assert [(h["id"], h["integration_type"]) for h in listed] == [(made["id"], "Webhook")]
    edited = ok(results[1])["integration"]
    assert edited["event"] == "humid" and edited["url"] == "http://127.0.0.1:9/j" and "json" not in edited
    assert results[2]["ok"] and results[2]["statusCode"] == 204, results[2]
    assert ok(results[3]) == []
    bad = failed(apijs(base_url, "createIntegration", {"event": "temp", "product": product.pk, "auth": token,
                                                       "settings": {"integration_type": "Webhook",
                                                                    "url": "http://127.0.0.1:9/i",
                                                                    "body": "{{#x}}"}}), 400)
    assert "body" in bad["error_description"]


def test_cli_webhook_create_list_delete(cli, base_url, tmp_path):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    cli.login("ada@example.com")
    proc = cli.run("webhook", "create", "temp", "http://127.0.0.1:9/cli")
    assert proc.returncode == 0, show(proc)
    hook = Integration.objects.get()
    assert hook.id in proc.stdout, show(proc)
    assert hook.event == "temp" and hook.url == "http://127.0.0.1:9/cli" and hook.user.email == "ada@example.com"
    spec = tmp_path / "hook.json"
    spec.write_text(json.dumps({"event": "humid", "url": "http://127.0.0.1:9/file", "requestType": "PUT",
                                "json": {"h": "{{PARTICLE_EVENT_VALUE}}"}}))
    proc = cli.run("webhook", "create", str(spec))
    assert proc.returncode == 0, show(proc)
    second = Integration.objects.exclude(pk=hook.id).get()
    assert second.config["requestType"] == "PUT" and second.config["json"] == {"h": "{{PARTICLE_EVENT_VALUE}}"}
    proc = cli.run("webhook", "list")
    assert proc.returncode == 0, show(proc)
    assert hook.id in proc.stdout and second.id in proc.stdout and "http://127.0.0.1:9/cli" in proc.stdout, show(proc)
    proc = cli.run("webhook", "delete", hook.id, timeout=30)  # hangs (and times out) on a 204
    assert proc.returncode == 0, show(proc)
    assert list(Integration.objects.values_list("pk", flat=True)) == [second.id]
