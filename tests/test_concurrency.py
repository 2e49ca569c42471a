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


def test_an_auto_approving_onboarding_takes_the_product_before_the_owner_as_an_import_does(transactional_db):
    """device_import locks product → owner → devices. The onboarding worker used to lock owner → devices and
    only then (inside the auto-approve import) the product, so an import into the same sandbox product beside it
    deadlocked. Here the product is held elsewhere: the onboarding must wait for it holding nothing, so the
    owner's row stays free to lock."""
    from console.services import users as user_services
    from devices.models import Onboarding
    from devices.services.onboarding import onboardings_run
    from devices.services.sessions import Hello, sessions_open
    from tests.support.presence import TEST_GATEWAY

    owner = UserFactory(email="order@example.com")
    product = make_product(user_services.sandbox_of(owner), name="Order Argons", platform_id=12)
    Product.objects.filter(pk=product.pk).update(quarantine=False)
    device_id = ids(manufacture(12, 1))[0]
    connect(device_id, session="s1")
    sessions_open([Hello(device_id=device_id, gateway=TEST_GATEWAY, session="s1", product_id=product.pk,
                         firmware_version=3, platform_id=12, flags=0, ip_address="192.0.2.7")])
    row_ids = list(Onboarding.objects.filter(device_id=device_id).values_list("pk", flat=True))
    from console.models import User

    def free_rows():  # NOWAIT: fails at once if the waiting onboarding holds the owner's row or the device's
        list(User.objects.select_for_update(nowait=True).filter(pk=owner.pk).values_list("pk"))
        list(Device.objects.select_for_update(nowait=True).filter(pk=device_id).values_list("pk"))

    _waits_holding_nothing(Product.objects.filter(pk=product.pk), lambda: onboardings_run(row_ids), free_rows,
                           "the onboarding did not wait for the product")
    assert Device.objects.get(pk=device_id).online is True


def test_an_approval_locks_the_claim_codes_user_before_the_device_rows(transactional_db):
    """Approving a quarantined device that waits on a live connection applies the claim code it presented,
    which locks the code's user. That lock used to come after the import had moved (locked) the device row,
    the reverse of every claim's order. With the user's row held elsewhere, the approval must wait for it
    holding no device row."""
    from console.models import User
    from console.services import users as user_services
    from devices.models import Onboarding
    from devices.services import claims

    owner, buyer = UserFactory(email="approver@example.com"), UserFactory(email="buyer@example.com")
    product = make_product(user_services.sandbox_of(owner), name="Approval Argons", platform_id=12)
    device_id = ids(manufacture(12, 1))[0]
    Device.objects.filter(pk=device_id).update(product=product, quarantined=True)
    code = claims.claim_code_create(principal=Principal.for_user(buyer)).code
    Onboarding.objects.create(device_id=device_id, gateway="gw-test", session="s1", hello_product_id=product.pk,
                              hello_firmware_version=3, hello_platform_id=12, claim_code=code, state="done",
                              outcome="quarantined")
    connect(device_id, session="s1")

    def free_device():  # NOWAIT: fails at once if the waiting approval holds the device row
        list(Device.objects.select_for_update(nowait=True).filter(pk=device_id).values_list("pk"))

    _waits_holding_nothing(
        User.objects.filter(pk=buyer.pk),
        lambda: importing.device_import(principal=Principal.for_user(owner), product=product, values=[(1, device_id)]),
        free_device, "the approval did not wait for the claim code's user")
    device = Device.objects.get(pk=device_id)
    assert (device.quarantined, device.online, device.owner_id) == (False, True, buyer.pk)


def _waits_holding_nothing(held, action, probe, why: str) -> None:
    """Lock-order check: hold the rows of `held` in another connection, start `action` in a thread, see it still
    waiting a second later, run `probe` (NOWAIT locks on the rows it must not hold yet) while it waits, then let
    it finish."""
    from django.db import transaction

    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                list(held.select_for_update(no_key=True).values_list("pk"))
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    def run():
        try:
            action()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    worker = threading.Thread(target=run)
    worker.start()
    worker.join(1.0)
    assert worker.is_alive(), why
    try:
        with transaction.atomic():
            probe()
    finally:
        release.set()
        holder.join(10)
        worker.join(10)
