"""Webhook delivery end to end: events handed to the integrations consumer become Delivery rows, a real
Celery worker sends them to a real HTTP receiver on 127.0.0.1, and the outcomes are recorded (particle-api.md
§14; DESIGN.md "Durable work"). Retry timings are shrunk by settings so the runs take seconds."""

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
from integrations import requests as hookreq
from devices import events as bus
from integrations.delivery import deliveries_requeue_stale
from integrations.models import Delivery, DeliveryDay, Integration
from tests.support.api import Api
from tests.support.integrations_receiver import Step, allow_loopback, free_port, running_receiver
from tests.support.polling import wait_for
from tests.support.worker import running_celery_worker

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "0123456789abcdef01234567"


def event(name: str = "temp", *, data: str = "21.5", coreid: str = DEVICE, product_id: int | None = None,
          user_id: int | None = None, hook: bool = False):
    """An API-style event for the bus with its audience given (a device's own events are routed from its row)."""
    return bus.event_make(device_id=coreid, name=name, data=data, product_id=product_id, user_id=user_id,
                          hook=hook, origin="cloud" if hook else "api")


@pytest.fixture
def fast(settings):
    allow_loopback(settings)
    settings.INTEGRATIONS_TIMEOUT_SECONDS = 3.0
    settings.INTEGRATIONS_RETRY_BASE_SECONDS = 0.2
    settings.INTEGRATIONS_RETRY_MAX_SECONDS = 0.5
    settings.INTEGRATIONS_MAX_ATTEMPTS = 3
    settings.INTEGRATIONS_THROTTLE_MIN_ERRORS = 1000  # the throttle has its own test
    settings.INTEGRATIONS_SLEEP_SECONDS = 0.4
    return settings


@pytest.fixture
def worker(transactional_db, fast):
    with running_celery_worker():
        yield
    app.control.purge()


def make_hook(cast, url: str, *, product: bool = False, **extra) -> dict:
    path = f"/v1/products/{cast.product.pk}/integrations" if product else "/v1/integrations"
    r = Api(cast.tokens["owner"]).post(path, {"integration_type": "Webhook", "event": "temp", "url": url, **extra})
    assert r.status_code == 201, r.content
    return r.json()


def publish(*events) -> list:
    """Through the real bus: the integrations consumer writes the deliveries before this returns."""
    return bus.events_publish(list(events))


def rows(hook_id: str):
    return Delivery.objects.filter(integration_id=hook_id)


pytestmark = pytest.mark.django_db(transaction=True)


def test_a_delivery_reaches_the_receiver_signed_and_is_recorded(cast, worker):
    with running_receiver() as rx:
        hook = make_hook(cast, rx.url("/in"))
        (ev,) = publish(event("temperature", user_id=cast.owner.pk))
        assert wait_for(lambda: rows(hook["id"]).filter(state="delivered").exists(), 15)
        (got,) = rx.at("/in")
        assert got.method == "POST" and got.headers["User-Agent"] == hookreq.USER_AGENT
        assert got.headers["X-Cyan-Event-Id"] == ev.id
        assert hookreq.signature_valid(hook["signing_secret"], got.headers["X-Cyan-Timestamp"], got.body,
                                       got.headers["X-Cyan-Signature"])
        assert b"event=temperature" in got.body and f"coreid={DEVICE}".encode() in got.body
        row = rows(hook["id"]).get()
        assert (row.attempts, row.last_status, row.event_id) == (1, 200, ev.id)
        day = DeliveryDay.objects.get(integration_id=hook["id"])
        assert (day.success, day.failure, day.sleep) == (1, 0, 0)
        detail = Api(cast.tokens["owner"]).get(f"/v1/integrations/{hook['id']}").json()["integration"]
        assert len(detail["logs"]) == 1 and detail["logs"][0]["response"]["status"] == 200
        assert detail["logs"][0]["request"]["headers"]["X-Cyan-Event-Id"] == ev.id


def test_events_that_do_not_match_owe_nothing(cast, worker):
    with running_receiver() as rx:
        hook = make_hook(cast, rx.url("/in"), deviceID="f" * 24)
        publish(event("temp", user_id=cast.owner.pk), event("Temp", user_id=cast.owner.pk, coreid="f" * 24),
                event("temp", user_id=cast.viewer.pk, coreid="f" * 24),
                event("temp", user_id=cast.owner.pk, coreid="f" * 24, hook=True))
        assert not Delivery.objects.exists()
        publish(event("temp", user_id=cast.owner.pk, coreid="f" * 24))
        assert wait_for(lambda: rows(hook["id"]).filter(state="delivered").count() == 1, 15)
        assert len(rx.requests) == 1


def test_product_and_sandbox_hooks_both_fire(cast, worker):
    with running_receiver() as rx:
        sandbox = make_hook(cast, rx.url("/sandbox"))
        product = make_hook(cast, rx.url("/product"), product=True)
        publish(event("temp", product_id=cast.product.pk, user_id=cast.owner.pk))
        assert wait_for(lambda: len(rx.at("/sandbox")) == 1 and len(rx.at("/product")) == 1, 15)
        assert rx.at("/sandbox")[0].headers["X-Cyan-Event-Id"] == rx.at("/product")[0].headers["X-Cyan-Event-Id"]
        assert wait_for(lambda: Delivery.objects.filter(state="delivered").count() == 2, 10)
        assert {sandbox["id"], product["id"]} == set(Delivery.objects.values_list("integration_id", flat=True))


def audience_events(audience: str) -> list:
    from devices import presence

    return [bus.bus_event(i.decode(), f[b"e"]) for i, f in presence.client().xrange(bus.replay_key(audience))]


def test_a_devices_own_event_fires_its_products_and_its_owners_hooks(cast, worker):
    from devices.models import Device
    from tests.support.fleet import import_devices

    device_id = import_devices(cast.product)[0]
    Device.objects.filter(pk=device_id).update(owner=cast.developer)
    with running_receiver() as rx:
        product = make_hook(cast, rx.url("/product"), product=True)
        owners = Api(cast.tokens["developer"]).post("/v1/integrations", {"event": "temp", "url": rx.url("/owner")})
        assert owners.status_code == 201, owners.content
        strangers = make_hook(cast, rx.url("/stranger"))  # the product owner's sandbox: not this device's owner
        bus.events_publish([bus.event_make(device_id=device_id, name="temp", data="19")])
        assert wait_for(lambda: len(rx.at("/product")) == 1 and len(rx.at("/owner")) == 1, 15)
        assert b"coreid=" + device_id.encode() in rx.at("/owner")[0].body
        assert rows(strangers["id"]).count() == 0 and rows(product["id"]).count() == 1


def test_hook_events_go_back_through_the_bus_and_never_trigger_hooks(cast, worker):
    with running_receiver() as rx:
        rx.script("/r", Step(200, "x" * 1300))
        rx.script("/e", Step(404, "nope"))
        good = make_hook(cast, rx.url("/r"), product=True)
        bad = make_hook(cast, rx.url("/e"), errorResponseTopic="oops/{{PARTICLE_EVENT_NAME}}")
        make_hook(cast, rx.url("/all"), event="hook")  # would catch hook-* events if they triggered hooks
        make_hook(cast, rx.url("/all"), event="oops")
        make_hook(cast, rx.url("/all"), event=DEVICE)
        publish(event("temp", product_id=cast.product.pk, user_id=cast.owner.pk))
        assert wait_for(lambda: rows(good["id"]).filter(state="delivered").exists()
                        and rows(bad["id"]).filter(state="dead").exists(), 15)
        assert wait_for(lambda: any(e.name == "oops/temp/0" for e in audience_events(f"u:{cast.owner.pk}")), 5)
        time.sleep(0.5)
        assert rx.at("/all") == [] and Delivery.objects.count() == 2
        product_stream = audience_events(f"p:{cast.product.pk}")
        chunks = [e for e in product_stream if e.name.startswith(f"{DEVICE}/hook-response/temp/")]
        assert sorted(e.name for e in chunks) == [f"{DEVICE}/hook-response/temp/{i}" for i in range(3)]
        assert sorted(len(e.data) for e in chunks) == [276, 512, 512]
        mine = audience_events(f"u:{cast.owner.pk}")
        sent = [e for e in mine if e.name == "hook-sent/temp"]
        assert len(sent) == 2 and all(e.data == "undefined" for e in sent)
        (error,) = [e for e in mine if e.name == "oops/temp/0"]
        assert error.data == "error status 404 from 127.0.0.1"
        made = [e for e in mine + product_stream if e.name.startswith(("hook-", "oops/", DEVICE))]
        assert made and all(e.hook and e.coreid == bus.CLOUD for e in made)


def test_a_500_then_a_200_is_retried_and_succeeds_once(cast, worker):
    with running_receiver() as rx:
        rx.script("/flaky", Step(500, "busy"), Step(200, "fine"))
        hook = make_hook(cast, rx.url("/flaky"))
        (ev,) = publish(event(user_id=cast.owner.pk))
        assert wait_for(lambda: rows(hook["id"]).filter(state="delivered").exists(), 15)
        assert [r.headers["X-Cyan-Event-Id"] for r in rx.at("/flaky")] == [ev.id, ev.id]
        row = rows(hook["id"]).get()
        assert (row.attempts, row.last_status) == (2, 200)
        day = DeliveryDay.objects.get(integration_id=hook["id"])
        assert (day.success, day.failure) == (1, 1)
        detail = Api(cast.tokens["owner"]).get(f"/v1/integrations/{hook['id']}").json()["integration"]
        assert [e["response"]["status"] for e in detail["logs"]] == [200, 500]
        assert detail["errors"][0]["error"] == "error status 500 from 127.0.0.1"


def test_a_404_is_not_retried_and_becomes_a_dead_letter(cast, worker):
    with running_receiver() as rx:
        rx.script("/gone", Step(404, "no such thing"))
        hook = make_hook(cast, rx.url("/gone"))
        publish(event(user_id=cast.owner.pk))
        assert wait_for(lambda: rows(hook["id"]).filter(state="dead").exists(), 15)
        time.sleep(1.0)  # longer than the shrunk retry schedule: a retry would have arrived by now
        assert len(rx.at("/gone")) == 1
        row = rows(hook["id"]).get()
        assert (row.attempts, row.last_status, row.last_error) == (1, 404, "error status 404 from 127.0.0.1")
        r = Api(cast.tokens["owner"]).get(f"/v1/integrations/{hook['id']}/dead_letters")
        assert r.status_code == 200 and r.json()["total"] == 1
        assert r.json()["dead_letters"][0]["last_status"] == 404


def test_a_receiver_that_is_down_dead_letters_then_replay_delivers_with_the_same_event_id(cast, worker):
    port = free_port()
    hook = make_hook(cast, f"http://127.0.0.1:{port}/later")
    (ev,) = publish(event(user_id=cast.owner.pk))
    assert wait_for(lambda: rows(hook["id"]).filter(state="dead").exists(), 20)
    row = rows(hook["id"]).get()
    assert row.attempts == 3 and "from 127.0.0.1" in row.last_error, row.last_error
    assert DeliveryDay.objects.get(integration_id=hook["id"]).failure == 3
    with running_receiver(port) as rx:
        api = Api(cast.tokens["owner"])
        listed = api.get(f"/v1/integrations/{hook['id']}/dead_letters").json()
        assert [d["event_id"] for d in listed["dead_letters"]] == [ev.id]
        r = api.post(f"/v1/integrations/{hook['id']}/dead_letters/replay", {})
        assert r.status_code == 200 and r.json() == {"ok": True, "replayed": 1}, r.content
        assert wait_for(lambda: rows(hook["id"]).filter(state="delivered").exists(), 15)
        (got,) = rx.at("/later")
        assert got.headers["X-Cyan-Event-Id"] == ev.id
        assert api.get(f"/v1/integrations/{hook['id']}/dead_letters").json()["total"] == 0


def test_a_slow_or_huge_receiver_does_not_stall_another_integrations_delivery(cast, worker):
    with running_receiver() as rx:
        rx.script("/slow", Step(200, "late", delay=2.5))
        rx.script("/huge", Step(200, b"x" * 5_000_000))
        slow = make_hook(cast, rx.url("/slow"))
        huge = make_hook(cast, rx.url("/huge"))
        quick = make_hook(cast, rx.url("/quick"))
        started = time.monotonic()
        publish(event(user_id=cast.owner.pk))  # one event, three hooks: one batch
        assert wait_for(lambda: rows(quick["id"]).filter(state="delivered").exists()
                        and rows(huge["id"]).filter(state="delivered").exists(), 10)
        assert time.monotonic() - started < 2.0, "the quick delivery waited for the slow receiver"
        assert rows(slow["id"]).get().state == "running"
        assert wait_for(lambda: rows(slow["id"]).filter(state="delivered").exists(), 10)
        entry = Api(cast.tokens["owner"]).get(f"/v1/integrations/{huge['id']}").json()["integration"]["logs"][0]
        assert len(entry["response"]["body"]) <= 16_384  # at most 100 KB read, 16 KB kept


def test_a_timeout_is_retried(cast, worker, fast):
    fast.INTEGRATIONS_TIMEOUT_SECONDS = 0.5
    with running_receiver() as rx:
        rx.script("/stuck", Step(200, "late", delay=2), Step(200, "ok"))
        hook = make_hook(cast, rx.url("/stuck"))
        publish(event(user_id=cast.owner.pk))
        assert wait_for(lambda: rows(hook["id"]).filter(state="delivered").exists(), 15)
        row = rows(hook["id"]).get()
        assert row.attempts == 2 and len(rx.at("/stuck")) == 2


def test_a_failing_host_sleeps_and_recovers(cast, worker, fast):
    fast.INTEGRATIONS_THROTTLE_MIN_ERRORS = 2
    fast.INTEGRATIONS_THROTTLE_RECOVERY_SECONDS = 1.5
    fast.INTEGRATIONS_MAX_ATTEMPTS = 1
    from integrations import throttle

    throttle.host_forget("127.0.0.1")
    with running_receiver() as rx:
        rx.script("/down", Step(503, "down"))
        hook = make_hook(cast, rx.url("/down"))
        for n in (1, 2):
            publish(event(user_id=cast.owner.pk))
            assert wait_for(lambda: rows(hook["id"]).filter(state="dead").count() == n, 10)
        assert len(rx.at("/down")) == 2
        rx.script("/down", Step(200, "back"))
        publish(event(user_id=cast.owner.pk))
        # sleeping: postponed, not sent
        assert wait_for(lambda: rows(hook["id"]).filter(sleeps__gte=1).exists(), 10)
        assert len(rx.at("/down")) == 2
        assert DeliveryDay.objects.get(integration_id=hook["id"]).sleep >= 1
        # after the recovery time without errors the postponed delivery goes out and succeeds
        assert wait_for(lambda: rows(hook["id"]).filter(state="delivered").exists(), 15)
        assert len(rx.at("/down")) == 3
    throttle.host_forget("127.0.0.1")


def test_a_private_target_is_refused_when_sent_unless_allowed(cast, worker, fast):
    with running_receiver() as rx:
        by_name = make_hook(cast, f"http://localhost:{rx.port}/private")  # a name: checked at send time
        literal = make_hook(cast, rx.url("/literal"))  # allowed when saved, refused once the setting changes
        templated = make_hook(cast, f"http://{{{{ip}}}}:{rx.port}/templated")  # the address comes from the data
        fast.INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS = []
        publish(event(user_id=cast.owner.pk, data='{"ip": "127.0.0.1"}'))
        hooks = [by_name["id"], literal["id"], templated["id"]]
        assert wait_for(lambda: Delivery.objects.filter(integration_id__in=hooks, state="dead").count() == 3, 15)
        assert rx.requests == []
        for hook_id in hooks:
            row = rows(hook_id).get()
            assert row.attempts == 1 and "private address" in row.last_error, row.last_error
        fast.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = True
        r = Api(cast.tokens["owner"]).post(f"/v1/integrations/{literal['id']}/dead_letters/replay", {})
        assert r.json()["replayed"] == 1
        assert wait_for(lambda: len(rx.at("/literal")) == 1, 15)


def test_the_test_button_really_sends(cast, worker):
    with running_receiver() as rx:
        rx.script("/t", Step(200, "hello"), Step(500, "nope"))
        hook = make_hook(cast, rx.url("/t"))
        api = Api(cast.tokens["owner"])
        r = api.post(f"/v1/integrations/{hook['id']}/test", {})
        assert r.status_code == 200 and r.json() == {"pass": True, "data": "hello", "error": None}, r.content
        (got,) = rx.at("/t")
        assert b"event=temp" in got.body and got.headers["X-Cyan-Event-Id"].startswith("test-")
        r = api.post(f"/v1/integrations/{hook['id']}/test", {})
        assert r.json() == {"pass": False, "data": "nope", "error": "error status 500 from 127.0.0.1"}


def test_a_stale_claim_is_handed_out_again(cast, worker):
    with running_receiver() as rx:
        hook = make_hook(cast, rx.url("/stale"))
        Integration.objects.filter(pk=hook["id"]).update(disabled=True)  # so the publish itself owes nothing
        (ev,) = publish(event(user_id=cast.owner.pk))
        Integration.objects.filter(pk=hook["id"]).update(disabled=False)
        assert not Delivery.objects.exists()
        from integrations.delivery import event_fields

        row = Delivery.objects.create(integration_id=hook["id"], event_id=ev.id,
                                      event=event_fields(ev), state="running",
                                      claimed_at=timezone.now() - timedelta(minutes=5),
                                      next_attempt_at=timezone.now() - timedelta(minutes=5))
        assert deliveries_requeue_stale() == 1
        assert wait_for(lambda: Delivery.objects.get(pk=row.pk).state == "delivered", 15)
        assert rx.at("/stale")[0].headers["X-Cyan-Event-Id"] == ev.id


def test_a_pending_delivery_whose_message_was_lost_is_sent_again(cast, worker):
    from integrations.delivery import event_fields

    with running_receiver() as rx:
        hook = make_hook(cast, rx.url("/lost"))
        Integration.objects.filter(pk=hook["id"]).update(disabled=True)
        (ev,) = publish(event(user_id=cast.owner.pk))
        Integration.objects.filter(pk=hook["id"]).update(disabled=False)
        # a row written, its broker message never sent (Redis restarted between commit and send)
        row = Delivery.objects.create(integration_id=hook["id"], event_id=ev.id, event=event_fields(ev),
                                      next_attempt_at=timezone.now() - timedelta(minutes=5))
        fresh = Delivery.objects.create(integration_id=hook["id"], event_id="9-9", event=event_fields(ev),
                                        next_attempt_at=timezone.now())  # due just now: its message is on its way
        assert deliveries_requeue_stale() == 1
        assert wait_for(lambda: Delivery.objects.get(pk=row.pk).state == "delivered", 15)
        assert Delivery.objects.get(pk=fresh.pk).state == "pending" and len(rx.at("/lost")) == 1


# --- a worker killed mid-batch (PostgreSQL: the subprocess needs the test database) ------------------------


def _worker_env() -> dict:
    env = dict(os.environ)
    s = connection.settings_dict
    env["DATABASE_URL"] = (f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:"
                           f"{s['PORT'] or 5432}/{s['NAME']}")
    env["INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS"] = "127.0.0.0/8"
    env["INTEGRATIONS_THROTTLE_MIN_ERRORS"] = "100000"
    return env


def _start_worker(log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "console", "worker", "--pool", "solo",
                             "--without-gossip", "--without-mingle", "-l", "warning"],
                            cwd=ROOT, env=_worker_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="a worker subprocess needs the test database: SQLite's is in this process's memory")
def test_sigkill_mid_batch_delivers_every_event_at_least_once_with_the_same_id(cast, fast, tmp_path):
    app.control.purge()
    with running_receiver() as rx:
        rx.script("/kill", Step(200, "ok", delay=0.3))  # each batch takes a while: the kill lands inside one
        hook = make_hook(cast, rx.url("/kill"))
        published = []
        for _ in range(10):
            published += publish(*[event(user_id=cast.owner.pk) for _ in range(100)])
        all_rows = rows(hook["id"])
        assert all_rows.count() == 1000
        first = _start_worker(tmp_path / "worker1.log")
        try:
            assert wait_for(lambda: all_rows.filter(state="delivered").count() >= 200
                            and all_rows.filter(state="running").exists(), 120), \
                (tmp_path / "worker1.log").read_text()
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        assert all_rows.filter(state="running").exists(), "the worker was not killed mid-batch"
        # Time passes: the dead worker's claims go stale (moved back rather than waiting a minute).
        all_rows.filter(state="running").update(claimed_at=timezone.now() - timedelta(minutes=5))
        all_rows.filter(state="pending").update(next_attempt_at=timezone.now() - timedelta(minutes=5))
        assert deliveries_requeue_stale() == all_rows.exclude(state="delivered").count()
        second = _start_worker(tmp_path / "worker2.log")
        try:
            assert wait_for(lambda: all_rows.filter(state="delivered").count() == 1000, 180), \
                (tmp_path / "worker2.log").read_text()
        finally:
            second.terminate()
            second.wait(30)
        received = [r.headers["X-Cyan-Event-Id"] for r in rx.at("/kill")]
        assert set(received) == {e.id for e in published}, "an event was never delivered"
        assert len(received) >= 1000
    app.control.purge()


def test_an_event_published_through_the_api_reaches_the_webhook(cast, worker):
    with running_receiver() as rx:
        hook = make_hook(cast, rx.url("/api"), json={"v": "{{{PARTICLE_EVENT_VALUE}}}", "who": "{{PARTICLE_DEVICE_ID}}"},
                         noDefaults=True)
        r = Api(cast.tokens["owner"]).post("/v1/devices/events", {"name": "temp/api", "data": "42"})
        assert r.status_code == 200 and r.json()["ok"] is True, r.content
        assert wait_for(lambda: rows(hook["id"]).filter(state="delivered").exists(), 15)
        (got,) = rx.at("/api")
        assert json.loads(got.body)["v"] == "42"
        assert got.headers["X-Cyan-Event-Id"] == rows(hook["id"]).get().event_id


def test_a_big_batch_keeps_the_newest_ten_successes_and_writes_its_rows_in_a_few_statements(cast, fast, monkeypatch):
    """200 deliveries that all succeed: every row delivered, the hook's log holds ten of them, and recording the
    outcomes takes a handful of UPDATEs (one per kind of outcome and recording), never one per row."""
    from django.test.utils import CaptureQueriesContext

    from integrations import delivery
    from integrations.delivery import deliveries_run
    from integrations.logs import logs_read

    # Outcomes are recorded every FLUSH_EVERY seconds while they arrive: on a loaded machine 200 answers can
    # spread over more recordings. The count asked about is per kind of outcome, so record once, at the end.
    monkeypatch.setattr(delivery, "FLUSH_EVERY", 60.0)

    with running_receiver() as rx:
        hook = make_hook(cast, rx.url("/in"))
        publish(*[event("temp", data=str(n), user_id=cast.owner.pk) for n in range(200)])
        app.control.purge()  # no worker here: this test runs the batch itself
        ids = list(rows(hook["id"]).order_by("id").values_list("id", flat=True))
        with CaptureQueriesContext(connection) as queries:
            assert deliveries_run(ids) == 200
        assert rows(hook["id"]).filter(state="delivered").count() == 200
        updates = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "delivery" in q["sql"]]
        assert len(updates) <= 6, [q["sql"][:80] for q in updates]
        kept = logs_read(hook["id"])["successes"]
        assert len({entry["delivery_id"] for entry in kept}) == 10
        assert {entry["delivery_id"] for entry in kept} <= set(ids)
