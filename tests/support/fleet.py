"""Devices for tests: manufactured (in the registry, in no product) and imported into products.

The names say which kind of fleet you get:

* `manufacture(platform_id, n)` / `ids(made)`: n registry devices (with SIMs), in no product;
* `import_devices(product, n, by=...)`: n fresh devices imported through the service, as the API does
  (counters and SIMs included); returns their ids;
* `import_named_devices(cast, n)`: the same into the cast's product, named dev-00, dev-01, ... with firmware
  versions 1-4 (what the console's list, search and sort tests look at).
"""

from __future__ import annotations


def manufacture(platform_id: int, count: int):
    from devices.services.registry import devices_manufacture
    from products.models import Platform

    return devices_manufacture(platform=Platform.objects.get(pk=platform_id), count=count)


def ids(made) -> list[str]:
    return [m.device_id for m in made]


def import_devices(product, count: int = 1, *, by=None) -> list[str]:
    """`count` fresh devices of the product's platform imported into it by `by` (default: the account owner)."""
    from console.scoping import Principal
    from devices.services.importing import device_import

    made = manufacture(product.platform_id, count)
    device_import(principal=Principal.for_user(by or product.account.owner), product=product,
                  values=list(enumerate(ids(made), start=1)))
    return ids(made)


def import_named_devices(cast, count: int, *, product=None, platform_id: int = 13) -> list[str]:
    """`count` manufactured devices imported into the product (Trackers by default), named dev-00, dev-01…"""
    from devices.services import importing
    from devices.models import Device
    from console.scoping import Principal

    product = product or cast.product
    made = manufacture(platform_id, count)
    device_ids = ids(made)
    importing.device_import(principal=Principal.for_user(cast.owner), product=product,
                            values=list(enumerate(device_ids, 1)))
    for n, device_id in enumerate(device_ids):
        Device.objects.filter(pk=device_id).update(name=f"dev-{n:02d}", firmware_version=n % 4 + 1)
    return device_ids


def customer_token(customer) -> str:
    from devices.services import customers

    return customers.customer_issue_token(customer, client=None).access_token


def keyed_photons(count: int, *, own_keys: bool = False, key_on_file: bool = True):
    """Registered Photons whose public keys are on file, as the simulator's device specs. They share one
    test-only key unless `own_keys`; with `key_on_file=False` the gateway holds another key for each (so it
    must refuse the handshake)."""
    from cryptography.hazmat.primitives import serialization

    from devices.models import DeviceKey
    from devices.simulator import DeviceSpec
    from tests.support.simulator import device_key, pkcs1_der

    shared = None if own_keys else device_key()
    specs, rows = [], []
    for device_id in ids(manufacture(6, count)):
        key = shared or device_key()
        on_file = key if key_on_file else device_key()
        rows.append(DeviceKey(device_id=device_id, public_key=on_file.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)))
        specs.append(DeviceSpec(device_id=device_id, platform_id=6, private_key=pkcs1_der(key)))
    DeviceKey.objects.bulk_create(rows)
    return specs


def online_rows(device_ids) -> set[str]:
    """Which of these devices the database says are online."""
    from devices.models import Device

    return set(Device.objects.filter(pk__in=list(device_ids), online=True).values_list("id", flat=True))
