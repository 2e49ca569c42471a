"""Onboarding (issue 12 item 4): what `sessions_open` decides at once, what the `devices.onboard` worker decides,
and what approval, deny and claim codes do to a connected device. The connections are presence entries as a
gateway writes them (tests/support/presence.py); a gateway's command channel is listened to with a real Redis
subscription, so the "admit" and "close" messages are checked as the gateway would receive them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from console.celery import app
from console.scoping import Principal
from devices import events, presence
from devices.models import ClaimCode, Device, Onboarding, SimCard
from devices.services import claims, importing
from devices.services.onboarding import GONE, onboardings_requeue_stale, onboardings_run
from devices.services.sessions import Hello, claim_code_presented, sessions_closed, sessions_open
from products.models import Product
from tests.factories import UserFactory
from tests.support.audit import assert_audited
from tests.support.fleet import ids, import_devices, manufacture
from tests.support.presence import TEST_GATEWAY, connect, disconnect

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def hello(device_id: str, product_id: int, platform_id: int, *, firmware: int = 3, session: str = "s1",
          ip: str = "192.0.2.7") -> Hello:
    return Hello(device_id=device_id, gateway=TEST_GATEWAY, session=session, product_id=product_id,
                 firmware_version=firmware, platform_id=platform_id, flags=0, ip_address=ip)


def statuses(device_id: str) -> list[str]:
    """The device's `spark/status` events, oldest first."""
    return [e["data"] for e in reversed(events.device_events_recent(device_id, 100)) if e["name"] == "spark/status"]


def connect_and_open(*hellos: Hello):
    """The gateway's part: record the connections in presence, then ask the domain."""
    for h in hellos:
        connect(h.device_id, session=h.session)
    return [v.outcome for v in sessions_open(list(hellos))]


def run_waiting() -> int:
    """What the enqueued task does, run here (these tests keep one transaction, so nothing was sent)."""
    return onboardings_run(list(Onboarding.objects.filter(state="pending").values_list("pk", flat=True)))


class GatewayChannel:
    """A subscription to the test gateway's command channel: what the gateway would be told."""

    def __init__(self) -> None:
        self.pubsub = presence.client().pubsub()
        self.pubsub.subscribe(presence.command_channel(TEST_GATEWAY))
        self.pubsub.get_message(timeout=2)  # the subscribe confirmation

    def messages(self, timeout: float = 2.0) -> list[dict]:
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.pubsub.get_message(timeout=0.2)
            if m and m["type"] == "message":
                out.append(json.loads(m["data"]))
            elif m is None and out:
                break
        return out

    def close(self) -> None:
        self.pubsub.close()


@pytest.fixture
def gateway():
    channel = GatewayChannel()
    yield channel
    channel.close()


# --- refused at once -----------------------------------------------------------------------------------


def test_unknown_denied_and_wrong_platform_are_refused_without_work(cast):
    member, denied = import_devices(cast.product, 2)
    Device.objects.filter(pk=denied).update(denied=True)
    argon = manufacture(12, 1)[0].device_id
    p = cast.product.pk
    verdicts = sessions_open([
        hello("0123456789abcdef01234567", p, 13),   # never manufactured
        hello(denied, p, 13),
        hello(member, p, 12),                        # the Hello says another platform than the registry
        hello(argon, p, 12),                         # an Argon presenting a Boron product
        hello(member, 999_999, 13),                  # a product id that names no product
    ])
    assert [(v.outcome, v.reason) for v in verdicts] == [
        ("refused", "unknown device"), ("refused", "denied"), ("refused", "wrong platform"),
        ("refused", "wrong platform"), ("refused", "unknown product")]
    assert Onboarding.objects.count() == 0
    assert Device.objects.filter(online=True).count() == 0


def test_a_device_of_another_product_is_refused(cast):
    other = Product.objects.create(account=cast.product.account, name="Other Borons", slug="other-borons",
                                   platform_id=13)
    elsewhere = import_devices(other, 1)[0]
    verdict = sessions_open([hello(elsewhere, cast.product.pk, 13)])[0]
    assert (verdict.outcome, verdict.reason) == ("refused", "member of another product")


# --- members: the worker, then the fast path ----------------------------------------------------------


def test_a_member_is_onboarded_once_and_reconnects_without_work(cast, gateway):
    device_id = import_devices(cast.product, 1)[0]
    assert connect_and_open(hello(device_id, cast.product.pk, 13)) == ["pending"]
    row = Onboarding.objects.get(device_id=device_id)
    assert (row.state, row.gateway, row.hello_product_id, row.ip_address) == ("pending", TEST_GATEWAY,
                                                                              cast.product.pk, "192.0.2.7")
    assert run_waiting() == 1
    row.refresh_from_db()
    assert (row.state, row.outcome, row.reason) == ("done", "online", "")
    device = Device.objects.get(pk=device_id)
    first = device.first_connected_at
    assert device.online and first is not None and device.last_ip_address == "192.0.2.7"
    assert statuses(device_id) == ["online"]
    told = gateway.messages()
    assert [(m["op"], m["device"], m["session"], m["args"]["outcome"]) for m in told] == [
        ("admit", device_id, "s1", "online")]
    assert run_waiting() == 0 and onboardings_run([row.pk]) == 0  # a redelivered message finds nothing

    disconnect(device_id)  # the gateway releases presence first (hub._closed), then closes the session
    sessions_closed([device_id])
    assert not Device.objects.get(pk=device_id).online and statuses(device_id) == ["online", "offline"]
    sessions_closed([device_id])  # a second close of the same device publishes nothing more
    assert statuses(device_id) == ["online", "offline"]

    assert connect_and_open(hello(device_id, cast.product.pk, 13, session="s2", ip="198.51.100.9")) == ["online"]
    assert Onboarding.objects.filter(device_id=device_id).count() == 1  # no new work on a reconnect
    device.refresh_from_db()
    assert device.online and device.first_connected_at == first and device.last_ip_address == "198.51.100.9"
    assert statuses(device_id) == ["online", "offline", "online"]


def test_a_missed_offline_is_published_before_the_online(cast):
    device_id = import_devices(cast.product, 1)[0]
    Device.objects.filter(pk=device_id).update(online=True, first_connected_at=timezone.now())
    assert connect_and_open(hello(device_id, cast.product.pk, 13)) == ["online"]
    assert statuses(device_id) == ["offline", "online"]


def test_a_fast_batch_is_a_handful_of_queries(cast, django_assert_max_num_queries):
    members = import_devices(cast.product, 50)
    Device.objects.filter(pk__in=members).update(first_connected_at=timezone.now())
    from integrations.owners import owners_with_hooks

    owners_with_hooks({"p:0"})  # the integrations' owners-with-hooks set, built once per Redis, not per batch
    # The devices, then in a savepoint: the rows locked in id order (PostgreSQL), one UPDATE for what the rows
    # share, one for the addresses; then the bus's one SELECT routing the batch's spark/status events.
    with django_assert_max_num_queries(7):
        assert set(connect_and_open(*[hello(d, cast.product.pk, 13) for d in members])) == {"online"}
    assert Device.objects.filter(pk__in=members, online=True).count() == 50


def test_the_connection_went_away_before_the_decision(cast, gateway):
    device_id = import_devices(cast.product, 1)[0]
    assert connect_and_open(hello(device_id, cast.product.pk, 13)) == ["pending"]
    connect(device_id, session="s9")  # the device reconnected meanwhile (its newer connection waits too)
    run_waiting()
    row = Onboarding.objects.get(device_id=device_id)
    assert (row.state, row.outcome, row.reason) == ("done", "online", GONE)
    assert not Device.objects.get(pk=device_id).online and statuses(device_id) == []
    assert gateway.messages(timeout=0.5) == []


def test_no_product_firmware_joins_its_sandbox(cast):
    mine, nobodys = ids(manufacture(12, 2))
    Device.objects.filter(pk=mine).update(owner=cast.outsider)
    assert connect_and_open(hello(mine, 12, 12), hello(nobodys, 12, 12, firmware=65535)) == ["pending", "pending"]
    run_waiting()
    rows = Device.objects.filter(pk__in=[mine, nobodys])
    assert {(d.id, d.online, d.product_id, d.owner_id) for d in rows} == {
        (mine, True, None, cast.outsider.pk), (nobodys, True, None, None)}
    # And a product device running no product firmware stays in its product.
    member = import_devices(cast.product, 1)[0]
    assert connect_and_open(hello(member, 13, 13)) == ["pending"]
    run_waiting()
    assert Device.objects.filter(pk=member, online=True, product=cast.product).exists()


# --- quarantine, approval, deny ----------------------------------------------------------------------


def test_an_unknown_device_waits_in_quarantine_and_an_approval_lets_it_in(cast, gateway,
                                                                          django_capture_on_commit_callbacks):
    capture_on_commit = django_capture_on_commit_callbacks
    device_id = manufacture(13, 1)[0].device_id
    assert connect_and_open(hello(device_id, cast.product.pk, 13)) == ["pending"]
    run_waiting()
    device = Device.objects.get(pk=device_id)
    assert (device.product_id, device.quarantined, device.online) == (cast.product.pk, True, False)
    product = Product.objects.get(pk=cast.product.pk)
    assert product.device_count == 0  # quarantined devices are not members
    assert_audited("devices.quarantine", actor=None, actor_label="Cyan onboarding", target=cast.product.slug,
                   product_id=cast.product.pk, data={"devices": 1, "ids": [device_id]})
    api = cast.api("owner")
    listed = api.get(f"/v1/products/{cast.product.pk}/devices?quarantined=true").json()["devices"]
    assert [d["id"] for d in listed] == [device_id]
    assert [(m["op"], m["args"]["outcome"]) for m in gateway.messages()] == [("admit", "quarantined")]
    # A reconnect while it waits: no new work.
    assert connect_and_open(hello(device_id, cast.product.pk, 13, session="s2")) == ["quarantined"]
    assert Onboarding.objects.filter(device_id=device_id).count() == 1

    with capture_on_commit(execute=True):
        r = api.post(f"/v1/products/{cast.product.pk}/devices", {"id": device_id})
    assert r.status_code == 200 and r.json()["updatedDeviceIds"] == [device_id]
    device.refresh_from_db()
    assert device.online and not device.quarantined and device.first_connected_at is not None
    assert Product.objects.get(pk=cast.product.pk).device_count == 1
    assert statuses(device_id) == ["online"]
    assert [(m["op"], m["session"], m["args"]["outcome"]) for m in gateway.messages()] == [
        ("admit", "s2", "online")]


def test_an_approval_of_an_offline_quarantined_device_only_moves_the_row(cast, gateway,
                                                                         django_capture_on_commit_callbacks):
    device_id = manufacture(13, 1)[0].device_id
    Device.objects.filter(pk=device_id).update(product=cast.product, quarantined=True)
    with django_capture_on_commit_callbacks(execute=True):
        importing.device_import(principal=Principal.for_user(cast.owner), product=cast.product,
                                values=[(1, device_id)])
    device = Device.objects.get(pk=device_id)
    assert not device.online and device.first_connected_at is None and not device.quarantined
    assert statuses(device_id) == [] and gateway.messages(timeout=0.5) == []


def test_deny_and_removal_close_the_connection(cast, gateway, django_capture_on_commit_callbacks):
    capture_on_commit = django_capture_on_commit_callbacks
    waiting = manufacture(13, 1)[0].device_id
    member = import_devices(cast.product, 1)[0]
    connect_and_open(hello(waiting, cast.product.pk, 13), hello(member, cast.product.pk, 13, session="s2"))
    run_waiting()
    gateway.messages()
    api = cast.api("owner")
    with capture_on_commit(execute=True):
        assert api.delete(f"/v1/products/{cast.product.pk}/devices/{waiting}", {"deny": True}).status_code == 204
    assert [(m["op"], m["device"], m["args"]["reason"]) for m in gateway.messages()] == [
        ("close", waiting, "denied")]
    with capture_on_commit(execute=True):
        assert api.delete(f"/v1/products/{cast.product.pk}/devices/{member}").status_code == 204
    assert [(m["op"], m["device"], m["args"]["reason"]) for m in gateway.messages()] == [
        ("close", member, "removed from its product")]
    # The denied device's next connect is refused at once; the removed one is onboarded afresh.
    assert connect_and_open(hello(waiting, cast.product.pk, 13)) == ["refused"]
    assert connect_and_open(hello(member, cast.product.pk, 13)) == ["pending"]


# --- auto-approve ----------------------------------------------------------------------------------------


def test_auto_approve_imports_exactly_as_an_import_does(cast):
    Product.objects.filter(pk=cast.product.pk).update(quarantine=False)
    device_id = manufacture(13, 1)[0].device_id  # a Boron: cellular, with a SIM
    assert connect_and_open(hello(device_id, cast.product.pk, 13)) == ["pending"]
    run_waiting()
    device = Device.objects.get(pk=device_id)
    assert (device.product_id, device.quarantined, device.online) == (cast.product.pk, False, True)
    assert Product.objects.get(pk=cast.product.pk).device_count == 1
    sim = SimCard.objects.get(device_id=device_id)
    assert (sim.status, sim.product_id) == ("active", cast.product.pk)
    assert_audited("devices.import", actor=None, actor_label="Cyan auto-approve", target=cast.product.slug,
                   product_id=cast.product.pk, data={"lines": 1, "added": 1, "existing": 0, "rejected": 0})
    assert statuses(device_id) == ["online"]


def test_auto_approve_respects_the_free_limit(cast):
    owner = cast.owner
    product = cast.sandbox_product  # the owner's sandbox product (Argons), free plan
    Product.objects.filter(pk=product.pk).update(quarantine=False)
    Device.objects.filter(pk__in=ids(manufacture(12, 100))).update(owner=owner)  # the sandbox is full
    device_id = manufacture(12, 1)[0].device_id
    assert connect_and_open(hello(device_id, product.pk, 12)) == ["pending"]
    run_waiting()
    device = Device.objects.get(pk=device_id)
    assert (device.product_id, device.quarantined, device.online) == (product.pk, True, False)
    row = Onboarding.objects.get(device_id=device_id)
    assert row.outcome == "quarantined" and row.reason.startswith("auto-approve refused: The free plan allows 100")
    assert Product.objects.get(pk=product.pk).device_count == 0


# --- claim codes, claiming -----------------------------------------------------------------------------


def _code(user, **kw) -> str:
    return claims.claim_code_create(principal=Principal.for_user(user), **kw).code


def test_a_claim_code_presented_while_pending_is_applied_by_the_worker(cast):
    ada = UserFactory(email="ada@example.com")
    device_id = manufacture(12, 1)[0].device_id
    code = _code(ada)
    assert connect_and_open(hello(device_id, 12, 12)) == ["pending"]
    claim_code_presented(device_id, code)
    assert Onboarding.objects.get(device_id=device_id).claim_code == code
    run_waiting()
    assert Device.objects.get(pk=device_id).owner == ada
    assert ClaimCode.objects.get(code=code).used_at is not None
    assert_audited("device.claim", actor=ada, target=device_id, data={"user": ada.email, "via": "claim code"})


def test_a_claim_code_on_an_online_device_claims_it_now_and_a_bad_one_is_ignored(cast):
    ada, bob = UserFactory(email="ada@example.com"), UserFactory(email="bob@example.com")
    device_id = manufacture(12, 1)[0].device_id
    connect_and_open(hello(device_id, 12, 12))
    run_waiting()
    claim_code_presented(device_id, "not-a-code")
    expired = _code(bob)
    ClaimCode.objects.filter(code=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
    claim_code_presented(device_id, expired)
    assert Device.objects.get(pk=device_id).owner is None
    code = _code(ada)
    claim_code_presented(device_id, code)
    assert Device.objects.get(pk=device_id).owner == ada
    # Used up; and bob's fresh code cannot take ada's device.
    claim_code_presented(device_id, _code(bob))
    assert Device.objects.get(pk=device_id).owner == ada


def test_a_customer_claim_code_waits_in_quarantine_for_the_approval(cast):
    from devices.models import Customer

    carol = Customer.objects.create(product=cast.product, email="carol@example.com")
    code = claims.claim_code_create(principal=Principal(kind="customer", customer_id=carol.pk,
                                                        product_id=cast.product.pk), product=cast.product).code
    device_id = manufacture(13, 1)[0].device_id
    connect_and_open(hello(device_id, cast.product.pk, 13))
    run_waiting()
    claim_code_presented(device_id, code)
    assert Device.objects.get(pk=device_id).customer is None  # quarantined: the code waits
    cast.api("owner").post(f"/v1/products/{cast.product.pk}/devices", {"id": device_id})
    device = Device.objects.get(pk=device_id)
    assert device.customer == carol and device.online and ClaimCode.objects.get(code=code).used_at is not None


def test_claiming_by_id_needs_the_device_online(cast):
    device_id = manufacture(12, 1)[0].device_id
    api = cast.api("outsider")
    r = api.post("/v1/devices", {"id": device_id})
    assert r.status_code == 400 and r.json()["error"] == "device_offline"
    assert "not connected" in r.json()["error_description"]
    assert Device.objects.get(pk=device_id).owner is None
    connect(device_id)
    r = api.post("/v1/devices", {"id": device_id})
    assert r.status_code == 200 and r.json()["claimed"] is True
    # Pre-claim at import with claim_user stays offline-friendly.
    spare = manufacture(13, 1)[0].device_id
    r = cast.api("owner").post(f"/v1/products/{cast.product.pk}/devices?claim_user={cast.developer.email}",
                               {"id": spare})
    assert r.json()["updatedDeviceIds"] == [spare] and Device.objects.get(pk=spare).owner == cast.developer


# --- durable work ----------------------------------------------------------------------------------------


def test_stale_claims_and_lost_messages_are_requeued(cast):
    running, pending, fresh = import_devices(cast.product, 3)
    connect_and_open(*[hello(d, cast.product.pk, 13) for d in (running, pending, fresh)])
    old = timezone.now() - timedelta(minutes=2)
    Onboarding.objects.filter(device_id=running).update(state="running", claimed_at=old)
    Onboarding.objects.filter(device_id=pending).update(created_at=old)
    app.control.purge()
    assert onboardings_requeue_stale() == 2
    assert Onboarding.objects.get(device_id=running).state == "pending"
    assert Onboarding.objects.get(device_id=fresh).state == "pending"  # young: its own message is on the way
    # A claim that is only seconds old is left alone (its worker is still on it); the old pending row, which
    # no worker took, is sent again.
    Onboarding.objects.filter(device_id=fresh).update(state="running", claimed_at=timezone.now())
    assert onboardings_requeue_stale() == 1 and Onboarding.objects.get(device_id=fresh).state == "running"
    app.control.purge()


def test_a_run_killed_after_its_decision_announces_once(cast):
    """A worker killed between the decision's commit and the announcement leaves the row decided but running:
    the requeued run announces without deciding again, and the online event goes out once."""
    device_id = import_devices(cast.product, 1)[0]
    connect_and_open(hello(device_id, cast.product.pk, 13))
    run_waiting()
    row = Onboarding.objects.get(device_id=device_id)
    first = Device.objects.get(pk=device_id).first_connected_at
    Onboarding.objects.filter(pk=row.pk).update(state="running", claimed_at=timezone.now() - timedelta(minutes=2))
    app.control.purge()
    assert onboardings_requeue_stale() == 1
    app.control.purge()
    assert onboardings_run([row.pk]) == 1
    row.refresh_from_db()
    assert (row.state, row.outcome) == ("done", "online")
    assert statuses(device_id) == ["online"] and Device.objects.get(pk=device_id).first_connected_at == first


def _worker_env() -> dict:
    env = dict(os.environ)
    s = connection.settings_dict
    env["DATABASE_URL"] = (f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:"
                           f"{s['PORT'] or 5432}/{s['NAME']}")
    return env


def _start_worker(log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "console", "worker", "--pool", "solo",
                             "--without-gossip", "--without-mingle", "-l", "warning"],
                            cwd=ROOT, env=_worker_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="a worker subprocess needs the test database: SQLite's is in this process's memory")
@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_onboarding_loses_nothing_and_doubles_nothing(cast, tmp_path):
    """1,000 devices wait; the worker is SIGKILLed while rows are running; after a requeue and a new worker
    every device is onboarded exactly once (auto-approve, so each one is also imported, counted and audited)."""
    Product.objects.filter(pk=cast.product.pk).update(quarantine=False)
    fleet = ids(manufacture(13, 1000))
    connect(*fleet)
    app.control.purge()
    # Five batches of 200, as a busy gateway sends them: each takes the worker a few hundred milliseconds, so
    # the kill below lands inside one (with 50-row batches a batch could finish between the look and the kill).
    for start in range(0, 1000, 200):
        assert set(v.outcome for v in sessions_open([hello(d, cast.product.pk, 13)
                                                     for d in fleet[start:start + 200]])) == {"pending"}
    rows = Onboarding.objects.filter(device_id__in=fleet)
    first = _start_worker(tmp_path / "worker1.log")
    try:
        # Kill it in the middle of a batch: some rows done, a batch claimed and being decided.
        assert _wait(lambda: rows.filter(state="done").count() >= 200 and rows.filter(state="running").exists(),
                     120), (tmp_path / "worker1.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    left = rows.exclude(state="done").count()
    assert left > 0 and rows.filter(state="running").exists(), "the worker was not killed mid-batch"
    # Time passes: the dead worker's claims go stale (moved back instead of waiting 60 s), the requeuer runs.
    rows.filter(state="running").update(claimed_at=timezone.now() - timedelta(minutes=2))
    rows.filter(state="pending").update(created_at=timezone.now() - timedelta(minutes=2))
    assert onboardings_requeue_stale() == left
    second = _start_worker(tmp_path / "worker2.log")
    try:
        assert _wait(lambda: rows.filter(state="done").count() == 1000, 180), (tmp_path / "worker2.log").read_text()
    finally:
        second.terminate()
        second.wait(30)
    assert rows.count() == 1000 and rows.filter(outcome="online", reason="").count() == 1000
    devices = Device.objects.filter(pk__in=fleet)
    assert devices.filter(online=True, first_connected_at__isnull=False, product=cast.product,
                          quarantined=False).count() == 1000
    assert Product.objects.get(pk=cast.product.pk).device_count == 1000
    assert SimCard.objects.filter(device_id__in=fleet, status="active", activations_count=1).count() == 1000
    assert sorted(len(statuses(d)) for d in fleet) == [1] * 1000
    from console.models import AuditEntry

    imports = AuditEntry.objects.filter(action="devices.import", product_id=cast.product.pk)
    assert sum(e.data["added"] for e in imports) == 1000
    app.control.purge()


def test_a_decision_whose_claim_was_taken_over_writes_nothing(cast):
    """A run whose rows went stale and were handed to another run records nothing: its effects roll back with
    it (the guard on `claimed_at`), and the other run decides."""
    from django.db import transaction

    from devices.services.onboarding import _ClaimLost, _decide

    device_id = manufacture(13, 1)[0].device_id
    connect_and_open(hello(device_id, cast.product.pk, 13))
    mine = timezone.now() - timedelta(minutes=2)
    Onboarding.objects.filter(device_id=device_id).update(state="running", claimed_at=timezone.now())  # theirs
    row = Onboarding.objects.get(device_id=device_id)
    with pytest.raises(_ClaimLost), transaction.atomic():
        _decide([row], mine)
    device = Device.objects.get(pk=device_id)
    assert (device.product_id, device.quarantined) == (None, False)
    assert Onboarding.objects.get(pk=row.pk).decided_at is None
