"""Device keys and self-provisioning through the official npm clients against a live Cyan server:
particle-api-js@12.0.3 `provisionDevice({productId})` and particle-cli@3.43.1 `particle keys send`.

The CLI turns whatever key file it is given into a public key PEM with `openssl` and posts it as a form to
`POST /v1/provisioning/:id` (deviceID, publicKey, order, filename, algorithm; product_id with --product_id)."""

from __future__ import annotations

import shutil

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devices.keys import device_key_pairs, device_public_key
from devices.models import Device
from devices.services.registry import devices_manufacture
from products.models import Platform
from tests.factories import UserFactory, make_org, make_product
from tests.support.clients import api_login, apijs, failed, ok, show
from tests.support.env import need, node_available

pytestmark = [pytest.mark.clients, pytest.mark.django_db(transaction=True)]

UNKNOWN_ID = "0123456789abcdef01234567"


def _spki(public) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_apijs_provision_device_makes_a_device_in_the_product(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Lamps", platform_id=6)
    outsider = UserFactory(email="outsider@example.com")
    token = api_login(base_url, owner.email)

    body = ok(apijs(base_url, "provisionDevice", {"productId": product.pk}, auth=token))
    device = Device.objects.get(pk=body["id"])
    assert device.product_id == product.pk and device.platform_id == 6 and device.owner_id is None
    assert body["product_id"] == product.pk and body["platform_id"] == 6 and body["online"] is False

    stranger = api_login(base_url, outsider.email)
    body = failed(apijs(base_url, "provisionDevice", {"productId": product.pk}, auth=stranger), 404)
    assert product.name not in body["error_description"]
    assert Device.objects.filter(product=product).count() == 1


def test_cli_keys_send_uploads_the_public_half_of_a_device_key(cli, base_url, tmp_path):
    need(node_available(), "node/npm not installed")
    need(shutil.which("openssl") is not None, "openssl not installed (particle keys send runs it)")
    ada = UserFactory(email="ada@example.com")
    private, public = device_key_pairs(1, workers=1)[0]
    device_id = devices_manufacture(platform=Platform.objects.get(pk=6), count=1, public_keys=[public])[0].device_id
    Device.objects.filter(pk=device_id).update(owner=ada)
    cli.login(ada.email)

    # A fresh key pair as `particle keys new` leaves it: the private key in PKCS#1 DER, what a device stores.
    fresh = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    key_file = tmp_path / f"{device_id}.der"
    key_file.write_bytes(fresh.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                             serialization.NoEncryption()))
    proc = cli.run("keys", "send", device_id, str(key_file))
    assert proc.returncode == 0, show(proc)
    assert "submitting public key succeeded!" in proc.stdout, show(proc)
    assert device_public_key(device_id) == _spki(fresh.public_key()) != public

    # A public key PEM, as `particle keys save` exports it.
    again = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = tmp_path / "again.pub.pem"
    pem.write_bytes(again.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo))
    proc = cli.run("keys", "send", device_id, str(pem))
    assert proc.returncode == 0, show(proc)
    assert device_public_key(device_id) == _spki(again.public_key())

    # Someone else's device, or one nobody made: refused, and nothing changes.
    other = devices_manufacture(platform=Platform.objects.get(pk=6), count=1)[0].device_id
    Device.objects.filter(pk=other).update(owner=UserFactory(email="grace@example.com"))
    for target in (other, UNKNOWN_ID):
        proc = cli.run("keys", "send", target, str(pem))
        assert proc.returncode != 0, show(proc)
        assert "Error sending public key to server" in proc.stdout + proc.stderr, show(proc)
        assert "not_found" in proc.stdout + proc.stderr, show(proc)
    assert device_public_key(other) is None
