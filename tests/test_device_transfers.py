"""Device transfer requests: `POST /v1/devices` with `request_transfer=true` on a device claimed to someone
else, approved or denied by that owner on the console's devices page."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from console.models import AuditEntry
from console.scoping import Principal
from devices.services import claims, transfers
from devices.services import devices as device_services
from devices.models import Device, DeviceTransfer
from devices.tasks import send_transfer_email
from tests.support.api import Api, user_token
from tests.support.fleet import manufacture
from tests.factories import UserFactory
from tests.support.presence import connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    owner, asker, stranger = (UserFactory(email=f"{n}@example.com") for n in ("keeper", "asker", "stranger"))
    device_id = manufacture(12, 1)[0].device_id
    connect(device_id)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(owner), device_id=device_id)
    return owner, asker, stranger, device_id


def ask(user, device_id, flag="true"):
    connect(device_id)  # claiming by id needs the device online
    return Api(user_token(user)).call("POST", "/v1/devices", {"id": device_id, "request_transfer": flag}, form=True)


def test_claiming_someone_elses_device_says_so_in_the_words_the_cli_looks_for(people):
    owner, asker, _, device_id = people
    connect(device_id)  # claiming by id needs the device online
    r = Api(user_token(asker)).post("/v1/devices", {"id": device_id})
    assert r.status_code == 403 and r.json()["error"] == "That belongs to someone else."
    assert not DeviceTransfer.objects.exists()


def test_a_transfer_request_is_recorded_once_and_leaves_the_device_alone(people):
    owner, asker, _, device_id = people
    first = ask(asker, device_id)
    body = first.json()
    assert first.status_code == 200, body
    assert body["ok"] is True and body["claimed"] is False and body["deviceID"] == device_id
    again = ask(asker, device_id).json()
    assert again["transfer_id"] == body["transfer_id"]  # asking twice does not nag the owner twice
    transfer = DeviceTransfer.objects.get()
    assert str(transfer.pk) == body["transfer_id"] and transfer.owner == owner and transfer.state == "pending"
    assert Device.objects.get(pk=device_id).owner == owner
    assert AuditEntry.objects.filter(action="device.transfer.request").count() == 1


def test_request_transfer_false_or_junk(people):
    _, asker, _, device_id = people
    assert ask(asker, device_id, "false").status_code == 403
    r = ask(asker, device_id, "maybe")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert not DeviceTransfer.objects.exists()


def test_a_customers_device_cannot_be_asked_for(cast):
    from devices.models import Customer

    device_id = manufacture(13, 1)[0].device_id
    customer = Customer.objects.create(product=cast.product, email="end-user@example.com")
    Device.objects.filter(pk=device_id).update(product=cast.product, customer=customer)
    connect(device_id)  # claiming by id needs the device online
    r = cast.api("developer").call("POST", "/v1/devices", {"id": device_id, "request_transfer": "true"}, form=True)
    assert r.status_code == 403 and r.json()["error"] == "That belongs to someone else."
    assert not DeviceTransfer.objects.exists()


def test_the_owner_sees_and_approves_the_request(people, client):
    owner, asker, _, device_id = people
    transfer_id = ask(asker, device_id).json()["transfer_id"]
    client.force_login(owner)
    page = client.get(reverse("console:devices:sandbox-list"))
    assert page.status_code == 200 and f'data-transfer="{transfer_id}"' in page.content.decode()
    assert asker.email in page.content.decode()
    r = client.post(reverse("console:devices:transfer-decide", args=[transfer_id]), {"decision": "approve"})
    assert r.status_code == 302
    assert Device.objects.get(pk=device_id).owner == asker
    assert DeviceTransfer.objects.get().state == "approved"
    # The device is the asker's now: in their list, gone from the old owner's.
    assert [d["id"] for d in Api(user_token(asker)).get("/v1/devices").json()] == [device_id]
    assert Api(user_token(owner)).get("/v1/devices").json() == []
    assert "Transfer requests" not in client.get(reverse("console:devices:sandbox-list")).content.decode()


def test_deny_keeps_the_device_and_a_decision_is_final(people, client):
    owner, asker, _, device_id = people
    transfer_id = ask(asker, device_id).json()["transfer_id"]
    client.force_login(owner)
    client.post(reverse("console:devices:transfer-decide", args=[transfer_id]), {"decision": "deny"})
    assert Device.objects.get(pk=device_id).owner == owner
    assert DeviceTransfer.objects.get().state == "denied"
    r = client.post(reverse("console:devices:transfer-decide", args=[transfer_id]), {"decision": "approve"},
                    follow=True)
    assert "already denied" in r.content.decode()
    assert Device.objects.get(pk=device_id).owner == owner


@pytest.mark.parametrize("form", [{}, {"decision": ""}, {"decision": "APPROVE"}, {"decision": "yes"},
                                  {"decision": "deny\x00"}])
def test_a_malformed_decision_decides_nothing(people, client, form):
    owner, asker, _, device_id = people
    transfer_id = ask(asker, device_id).json()["transfer_id"]
    client.force_login(owner)
    r = client.post(reverse("console:devices:transfer-decide", args=[transfer_id]), form, follow=True)
    assert r.status_code == 200 and "Choose Approve or Deny" in r.content.decode()
    assert DeviceTransfer.objects.get().state == "pending"
    assert Device.objects.get(pk=device_id).owner == owner


def test_only_the_owner_may_decide(people, client):
    owner, asker, stranger, device_id = people
    transfer_id = ask(asker, device_id).json()["transfer_id"]
    for who in (asker, stranger):
        client.force_login(who)
        r = client.post(reverse("console:devices:transfer-decide", args=[transfer_id]), {"decision": "approve"})
        assert r.status_code == 404, who.email
    assert client.get(reverse("console:devices:transfer-decide", args=[transfer_id])).status_code == 405
    assert Device.objects.get(pk=device_id).owner == owner
    assert DeviceTransfer.objects.get().state == "pending"


def test_a_request_lapses_when_the_device_changed_hands_meanwhile(people):
    owner, asker, stranger, device_id = people
    transfer_id = ask(asker, device_id).json()["transfer_id"]
    device_services.device_unclaim(principal=Principal.for_user(owner), device=Device.objects.get(pk=device_id))
    connect(device_id)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(stranger), device_id=device_id)
    from console.errors import Conflict, NotFound

    with pytest.raises(NotFound):  # the stranger was never asked
        transfers.device_transfer_decide(principal=Principal.for_user(stranger), transfer_id=transfer_id, approve=True)
    lapsed = transfers.device_transfer_decide(principal=Principal.for_user(owner), transfer_id=transfer_id,
                                             approve=True)
    assert lapsed.state == "lapsed" and DeviceTransfer.objects.get().state == "lapsed"
    with pytest.raises(Conflict):
        transfers.device_transfer_decide(principal=Principal.for_user(owner), transfer_id=transfer_id, approve=True)
    assert Device.objects.get(pk=device_id).owner == stranger


def test_approving_one_request_lapses_the_others(people):
    owner, asker, stranger, device_id = people
    first = ask(asker, device_id).json()["transfer_id"]
    second = ask(stranger, device_id).json()["transfer_id"]
    transfers.device_transfer_decide(principal=Principal.for_user(owner), transfer_id=second, approve=True)
    assert DeviceTransfer.objects.get(pk=first).state == "lapsed"
    assert Device.objects.get(pk=device_id).owner == stranger


def test_approval_respects_the_askers_free_limit(people, client, settings):
    owner, asker, _, device_id = people
    transfer_id = ask(asker, device_id).json()["transfer_id"]
    from devices.selectors import limits

    ids = [m.device_id for m in manufacture(12, limits.FREE_DEVICE_LIMIT)]
    Device.objects.filter(pk__in=ids).update(owner=asker)
    client.force_login(owner)
    r = client.post(reverse("console:devices:transfer-decide", args=[transfer_id]), {"decision": "approve"},
                    follow=True)
    assert "free plan allows" in r.content.decode()
    assert Device.objects.get(pk=device_id).owner == owner
    assert DeviceTransfer.objects.get().state == "pending"


def test_the_emails(people):
    owner, asker, _, device_id = people
    transfer = DeviceTransfer.objects.get(pk=ask(asker, device_id).json()["transfer_id"])
    mail.outbox.clear()
    assert send_transfer_email(transfer_id=transfer.pk) is True
    assert mail.outbox[-1].to == [owner.email] and asker.email in mail.outbox[-1].body
    transfers.device_transfer_decide(principal=Principal.for_user(owner), transfer_id=transfer.pk, approve=False)
    assert send_transfer_email(transfer_id=transfer.pk) is True
    assert mail.outbox[-1].to == [asker.email] and "denied" in mail.outbox[-1].subject
    assert send_transfer_email(transfer_id=999_999) is False
