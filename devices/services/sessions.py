"""What the gateway asks of the domain when a device connects, talks and goes away. The gateway calls these
(from a thread, in batches: many devices connect in the same few milliseconds); they are plain services,
so tests, the simulator's benchmarks and a future DTLS transport reach the same rules.

The shapes are here; the functions below them decide (onboarding, presence in the rows, claim codes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from console.queue import enqueue_on_commit
from devices import events, presence
from devices.models import Device, Onboarding
from devices.services import claims, liveness
from products.models import Product

ONBOARD_TASK = "devices.onboard"


@dataclass(frozen=True)
class Hello:
    """One connection's Hello, after a handshake that proved the device's key."""

    device_id: str
    gateway: str
    session: str
    product_id: int          # the Hello's product id (a device without product firmware says its platform id)
    firmware_version: int    # product firmware version; 65535 = none
    platform_id: int
    flags: int
    ip_address: str | None


@dataclass(frozen=True)
class Verdict:
    """What the gateway does with the connection: "online" (let it in now), "quarantined" (keep it connected
    but let it do nothing until approved), "pending" (a worker decides; it will notify the gateway with op
    "admit"), "refused" (close it, logging `reason`)."""

    outcome: str
    reason: str = ""


NO_PRODUCT_FIRMWARE = 65535  # the Hello's product firmware version when the device runs no product firmware

log = logging.getLogger("cyan.onboarding")


def has_product_firmware(product_id: int, firmware_version: int, platform_id: int) -> bool:
    """Device OS without PRODUCT_ID set says its platform id as the product id (and 65535 as the version)."""
    return product_id != platform_id and firmware_version != NO_PRODUCT_FIRMWARE


def refusal(device: Device | None, *, platform_id: int, product_firmware: bool, product: Product | None) -> str:
    """Why a connection is refused ("" = it is not): the rules sessions_open and the worker share."""
    if device is None:
        return "unknown device"
    if device.denied:
        return "denied"
    if platform_id != device.platform_id:
        return "wrong platform"
    if product_firmware:
        if product is None:
            return "unknown product"
        if product.platform_id != device.platform_id:
            return "wrong platform"
        if device.product_id is not None and device.product_id != product.pk:
            return "member of another product"
    return ""


def status_event(device: Device, data: str, now_iso: str | None = None) -> events.DeviceEvent:
    """A device's `spark/status`: the bus routes it from the device's row, like the device's own events."""
    return events.event_make(device_id=device.id, name="spark/status", data=data, published_at=now_iso)


def devices_mark_online(devices: list[Device], *, now, contact: dict[str, str | None] | None = None
                        ) -> list[events.DeviceEvent]:
    """Write the rows of devices that are now online and return their `spark/status` events, to publish once
    the caller's transaction commits. `contact`: device id -> IP address, when this is a new connection (the
    handshake time and address change too); without it (an approval letting a waiting connection in) only
    the online state and last heard change. Shared by the reconnect fast path, the onboarding worker and the
    approval of a quarantined device, so the three write the same thing.

    One UPDATE for what every row shares, and (new connections) one more for the addresses: Django's
    bulk_update writes a CASE per field and row, which PostgreSQL took 1.5 s to run for 200 rows here."""
    if not devices:
        return []
    stamp = events.now_iso()
    out: list[events.DeviceEvent] = []
    for device in devices:
        if device.online:  # the row still says online: the previous connection's end was missed
            out.append(status_event(device, "offline", stamp))
        out.append(status_event(device, "online", stamp))
    shared = {"online": True, "last_heard": now,
              # Metered billing starts here (DESIGN.md §4 "Billing"): a device counts from its first connect
              # ever. When billing meters devices it counts `first_connected_at` within the period (or hooks
              # in at this line); nothing else needs to change.
              "first_connected_at": Coalesce("first_connected_at", Value(now))}
    if contact is not None:
        shared["last_handshake_at"] = now
    device_ids = sorted(d.id for d in devices)
    liveness.lock_devices_in_order(device_ids)
    for start in range(0, len(device_ids), 500):
        Device.objects.filter(pk__in=device_ids[start:start + 500]).update(**shared)
    if contact is not None:
        _write_addresses({d: ip for d, ip in contact.items() if ip})
    for device in devices:  # keep the caller's objects true to the rows
        device.online, device.last_heard = True, now
        device.first_connected_at = device.first_connected_at or now
        if contact is not None:
            device.last_handshake_at = now
            device.last_ip_address = contact.get(device.id) or device.last_ip_address
    return out


def _write_addresses(address: dict[str, str]) -> None:
    """Each device's last IP address: one statement joined to two arrays on PostgreSQL, one UPDATE per
    distinct address elsewhere."""
    if not address:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("UPDATE devices_device d SET last_ip_address = v.ip::inet "
                      "FROM unnest(%s::text[], %s::text[]) AS v(id, ip) WHERE d.id = v.id",
                      [list(address), list(address.values())])
        return
    by_ip: dict[str, list[str]] = {}
    for device_id, ip in address.items():
        by_ip.setdefault(ip, []).append(device_id)
    for ip, device_ids in by_ip.items():
        Device.objects.filter(pk__in=device_ids).update(last_ip_address=ip)


def sessions_open(hellos: list[Hello]) -> list[Verdict]:
    """Decide each new connection (same order as `hellos`): refused, online at once (a reconnect of a device
    whose onboarding already happened), quarantined (still waiting for approval), or pending (an Onboarding
    row, decided by one `devices.onboard` task for the whole batch)."""
    if not hellos:
        return []
    now = timezone.now()
    devices = {d.id: d for d in Device.objects.select_related("product", "platform")
               .filter(pk__in={h.device_id for h in hellos})}
    products = {d.product_id: d.product for d in devices.values() if d.product_id is not None}
    named = {h.product_id for h in hellos
             if has_product_firmware(h.product_id, h.firmware_version, h.platform_id)} - set(products)
    if named:
        products.update((p.pk, p) for p in Product.objects.filter(pk__in=named))
    verdicts: list[Verdict] = []
    online: dict[str, Device] = {}
    contact: dict[str, str | None] = {}
    waiting: list[Onboarding] = []
    for hello in hellos:
        device = devices.get(hello.device_id)
        product_firmware = has_product_firmware(hello.product_id, hello.firmware_version, hello.platform_id)
        product = products.get(hello.product_id) if product_firmware else None
        reason = refusal(device, platform_id=hello.platform_id, product_firmware=product_firmware, product=product)
        if reason:
            log.info("device %s refused at connect: %s", hello.device_id, reason)
            verdicts.append(Verdict("refused", reason))
            continue
        in_place = device.product_id == product.pk if product_firmware else True
        if in_place and device.quarantined:
            verdicts.append(Verdict("quarantined"))
        elif in_place and device.first_connected_at is not None:
            online[device.id] = device
            contact[device.id] = hello.ip_address
            verdicts.append(Verdict("online"))
        else:
            waiting.append(Onboarding(
                device_id=hello.device_id, gateway=hello.gateway, session=hello.session,
                hello_product_id=hello.product_id, hello_firmware_version=hello.firmware_version,
                hello_platform_id=hello.platform_id, ip_address=hello.ip_address, created_at=now))
            verdicts.append(Verdict("pending"))
    with transaction.atomic():
        published = devices_mark_online(list(online.values()), now=now, contact=contact)
        if waiting:
            Onboarding.objects.bulk_create(waiting)
            enqueue_on_commit(ONBOARD_TASK, ids=[row.pk for row in waiting])
    events.events_publish(published)
    return verdicts


def sessions_closed(device_ids: list[str]) -> None:
    """These connections ended (the gateway checked they were the devices' current ones): the rows go
    offline and each device that was online publishes `spark/status` offline."""
    if not device_ids:
        return
    with transaction.atomic():
        went = list(Device.objects.select_for_update().filter(pk__in=device_ids, online=True).order_by("pk")
                    .only("id", "product_id"))
        # A device may have connected again between the gateway's release and these locks: its new session
        # claimed presence first and marks the row online after, so with the row locked a connected device
        # is one whose new session owns the row now. It stays online.
        back = presence.devices_connected([d.id for d in went])
        went = [d for d in went if d.id not in back]
        if went:
            Device.objects.filter(pk__in=[d.id for d in went]).update(online=False)
    stamp = events.now_iso()
    events.events_publish([status_event(d, "offline", stamp) for d in went])


def claim_code_presented(device_id: str, code: str) -> None:
    """The device sent `spark/device/claim/code` (right after its Hello). A valid code claims the device
    (claims.device_claim_by_code); while its onboarding is undecided the code waits on the Onboarding row for
    the worker, and while it is quarantined it waits there for the approval. Invalid codes are logged."""
    code = (code or "").strip()
    if not code or claims.claim_code_valid(code) is None:
        log.info("device %s presented an invalid or expired claim code", device_id)
        return
    with transaction.atomic():
        if Onboarding.objects.filter(device_id=device_id, state__in=[Onboarding.State.PENDING,
                                                                       Onboarding.State.RUNNING],
                                     decided_at__isnull=True).update(claim_code=code[:63]):
            return  # the worker applies it once it has decided
        device = Device.objects.filter(pk=device_id).only("id", "quarantined", "denied").first()
        if device is None or device.denied:
            log.info("device %s presented a claim code but is %s", device_id, "denied" if device else "unknown")
            return
        if device.quarantined:
            latest = Onboarding.objects.filter(device_id=device_id).order_by("-created_at", "-pk").first()
            if latest is not None:
                Onboarding.objects.filter(pk=latest.pk).update(claim_code=code[:63])
            return
    claims.device_claim_by_code(code=code, device_id=device_id)


def devices_admit_approved(*, product: Product, device_ids: list[str], now) -> None:
    """An approval (an import of quarantined ids) took these devices out of `product`'s quarantine: those whose
    connection is still waiting come online without reconnecting — the same row writes and events as the
    worker, a claim code they presented is applied, and after commit the gateway is told to admit them.
    Called inside the import's transaction; `device_ids` are the ones that were quarantined and connected."""
    if not device_ids:
        return
    devices = list(Device.objects.filter(pk__in=device_ids, product=product, quarantined=False))
    published = devices_mark_online(devices, now=now)
    codes = dict(_waiting_claim_codes([d.id for d in devices]).values_list("device_id", "claim_code"))
    for device_id, code in codes.items():
        claims.device_claim_by_code(code=code, device_id=device_id)
    ids = [d.id for d in devices]

    def tell() -> None:
        events.events_publish(published)
        presence.devices_notify([(device_id, "admit", {"outcome": "online"}) for device_id in ids])

    transaction.on_commit(tell)


def _waiting_claim_codes(device_ids: list[str]):
    """The claim codes these quarantined devices presented (on their Onboarding rows), oldest first."""
    return (Onboarding.objects.filter(device_id__in=device_ids, outcome="quarantined").exclude(claim_code="")
            .order_by("created_at"))


def claim_code_users_waiting(device_ids: list[str]) -> set:
    """The users behind the claim codes these quarantined devices presented: an approval applies them, so it
    locks those users (before any device row) first."""
    if not device_ids:
        return set()
    return claims.claim_code_users(set(_waiting_claim_codes(device_ids).values_list("claim_code", flat=True)))


def connected_quarantined(product: Product, device_ids: list[str]) -> list[str]:
    """Which of `device_ids` wait in `product`'s quarantine with a live connection (one Redis round trip per
    10,000 ids, then one query over the connected few): what an approval must let in."""
    connected: list[str] = []
    for start in range(0, len(device_ids), 10_000):
        connected += sorted(presence.devices_connected(device_ids[start:start + 10_000]))
    if not connected:
        return []
    return list(Device.objects.filter(pk__in=connected, product=product, quarantined=True)
                .values_list("id", flat=True))


def device_disconnect_on_commit(device_id: str, reason: str) -> None:
    """After the caller's transaction commits, ask the gateway to close the device's connection (a deny, a
    removal from its product): its next connect is decided afresh."""
    transaction.on_commit(lambda: presence.device_notify(device_id, "close", reason=reason))
