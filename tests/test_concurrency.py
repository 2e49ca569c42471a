"""Races that locks and unique indexes settle (PostgreSQL: real locks, separate connections): an import
against a product delete, two claims against the last free-plan slot, and two sign-ups or two invitations of
one email (both pass their own duplicate check; the unique index turns the loser into the duplicate's 400).

Device.product has no database constraint, so only Django's SET_NULL releases a deleted product's devices;
the delete must therefore wait for a running import, or the devices that import adds would point at a
product that no longer exists."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from console.scoping import Principal
from devices.services import importing
from devices.models import Device
from products.models import Product
from tests.support.fleet import ids, manufacture
from tests.factories import UserFactory, make_org, make_product
from tests.support.presence import connect

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL only")


def test_a_delete_waits_for_the_import_and_then_releases_its_devices(transactional_db, monkeypatch):
    owner = UserFactory(email="racer@example.com")
    product = make_product(make_org(owner, "Race Org"), name="Race", platform_id=13)
    made = ids(manufacture(13, 3))
    monkeypatch.setattr(importing, "CHUNK", 1)  # a progress callback per line, inside the import's transaction
    inside, release = threading.Event(), threading.Event()

    def progress(done, total):
        if done < total:  # still inside the transaction: the rows are moved, nothing is committed yet
            inside.set()
            release.wait(10)

    def run_import():
        try:
            importing.device_import(principal=Principal.for_user(owner), product=product,
                                    values=list(enumerate(made, 1)), progress=progress)
        finally:
            connections.close_all()

    def run_delete():
        try:
            Product.objects.get(pk=product.pk).delete()
        finally:
            connections.close_all()

    importer = threading.Thread(target=run_import)
    importer.start()
    assert inside.wait(10), "the import never reached its transaction"
    deleter = threading.Thread(target=run_delete)
    deleter.start()
    deleter.join(1.0)
    assert deleter.is_alive(), "the delete did not wait for the running import"
    release.set()
    importer.join(10)
    deleter.join(10)
    assert not Product.objects.filter(pk=product.pk).exists()
    assert Device.objects.filter(pk__in=made, product_id__isnull=False).count() == 0


def test_two_claims_cannot_both_take_the_last_free_device(transactional_db):
    from django.db import transaction

    from console.errors import LimitExceeded
    from devices.selectors import limits
    from devices.services import claims as services

    user = UserFactory(email="last-slot@example.com")
    filler = ids(manufacture(12, limits.FREE_DEVICE_LIMIT - 1))
    Device.objects.filter(pk__in=filler).update(owner=user)
    first, second = ids(manufacture(12, 2))
    claimed, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def claim_and_hold():
        try:
            with transaction.atomic():
                connect(first)  # claiming by id needs the device online
                services.device_claim(principal=Principal.for_user(user), device_id=first)
                claimed.set()
                release.wait(10)
            outcome["first"] = "claimed"
        finally:
            connections.close_all()

    def claim_second():
        try:
            connect(second)  # claiming by id needs the device online
            services.device_claim(principal=Principal.for_user(user), device_id=second)
            outcome["second"] = "claimed"
        except LimitExceeded:
            outcome["second"] = "refused"
        finally:
            connections.close_all()

    holder = threading.Thread(target=claim_and_hold)
    holder.start()
    assert claimed.wait(10)
    other = threading.Thread(target=claim_second)
    other.start()
    other.join(1.0)
    assert other.is_alive(), "the second claim counted while the first was still uncommitted"
    release.set()
    holder.join(10)
    other.join(10)
    assert outcome == {"first": "claimed", "second": "refused"}
    assert limits.sandbox_device_count(user) == limits.FREE_DEVICE_LIMIT


def _race_on_insert(table: str, request) -> list:
    """Run `request` in two threads at once, each with its own connection, while a third holds `table` in SHARE
    mode: both requests read (no row yet, so both pass their own duplicate check) and then wait on their
    INSERT; the lock is let go once both wait, and the unique index decides between them. Returns both
    responses."""
    locked, release = threading.Event(), threading.Event()
    results: list = []

    def hold_lock():
        try:
            with connections["default"].cursor() as cur:
                cur.execute("BEGIN")
                cur.execute(f"LOCK TABLE {table} IN SHARE MODE")
                locked.set()
                release.wait(20)
                cur.execute("COMMIT")
        finally:
            connections.close_all()

    def run():
        try:
            results.append(request())
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(10)
    racers = [threading.Thread(target=run) for _ in range(2)]
    for racer in racers:
        racer.start()
    with connection.cursor() as cur:
        for _ in range(200):  # both INSERTs are queued behind the lock
            cur.execute("SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", [table])
            if cur.fetchone()[0] == 2:
                break
            threading.Event().wait(0.05)
        else:
            release.set()
            raise AssertionError("the two requests never both reached their INSERT")
    release.set()
    holder.join(20)
    for racer in racers:
        racer.join(20)
    return results


def test_two_sign_ups_racing_for_one_email_make_one_account_and_one_400(transactional_db):
    from console.models import User
    from tests.support.api import Api

    body = {"username": "race@example.com", "password": "a-long-unusual-passphrase-42"}
    answers = _race_on_insert("console_user", lambda: Api().post("/v1/users", body))
    assert sorted(r.status_code for r in answers) == [200, 400]
    loser = next(r for r in answers if r.status_code == 400)
    assert loser.json() == {"error": "conflict", "error_description": "A user with that email already exists",
                            "field": "username"}
    assert User.objects.filter(email="race@example.com").count() == 1


def test_two_invites_racing_for_one_email_leave_one_invitation_and_one_400(transactional_db):
    from console.models import Invitation
    from tests.support.api import Api, user_token

    owner = UserFactory(email="inviter@example.com")
    product = make_product(make_org(owner, "Invite Org"), name="Invite Race", platform_id=13)
    api = Api(user_token(owner))
    answers = _race_on_insert("console_invitation", lambda: api.post(
        f"/v1/products/{product.slug}/team", {"username": "newbie@example.com", "role": "Support"}))
    assert sorted(r.status_code for r in answers) == [200, 400]
    loser = next(r for r in answers if r.status_code == 400)
    assert loser.json()["error_description"] == \
        "newbie@example.com already has a pending invitation to this team; revoke it to invite again"
    assert Invitation.objects.filter(email="newbie@example.com").count() == 1
