"""Device keys and the server key: the key pair on first use (and when several processes race for it), the
server key file's layout, `manage.py server_key`, `manage.py manufacture --secrets` (JSON Lines, keys per device
or one shared), the gateway's key lookups, `POST /v1/provisioning/:id` and self-provisioning.

Facts: particle-device-protocol.md "Keys and files"; particle-api.md §6 (provisioning, self-provision)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from console.errors import ValidationFailed
from console.models import AuditEntry
from devices import keys
from devices.models import Device, DeviceKey, SerialNumber, SimCard
from devices.services.keys import key_fingerprint
from products.models import Product
from tests.factories import UserFactory, make_product
from tests.support.api import Api, user_token
from tests.support.audit import assert_audited
from tests.support.errors import assert_json_error
from tests.support.fleet import import_devices, manufacture

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN_ID = "0123456789abcdef01234567"


@pytest.fixture
def fresh_key_dir(tmp_path, settings):
    """A data directory with no server key yet, and no key cached in this process."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DEVICE_SERVER_KEY_FILE = ""
    keys._server_key.cache_clear()
    yield settings.DATA_DIR
    keys._server_key.cache_clear()


def spki(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def pem_public(key, fmt=serialization.PublicFormat.SubjectPublicKeyInfo) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM, fmt).decode()


def _error(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.content[:300])
    return assert_json_error(r)


# --- the server key pair -------------------------------------------------------------------------------------


def test_server_key_is_made_on_first_use_private_and_kept(fresh_key_dir):
    assert not (fresh_key_dir / "server_key.pem").exists()
    key = keys.server_private_key()
    path = fresh_key_dir / "server_key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh_key_dir.stat().st_mode) == 0o700
    assert key.key_size == 2048 and key.public_key().public_numbers().e == 65537
    assert keys.server_private_key() is key  # cached per process
    keys._server_key.cache_clear()
    assert spki(keys.server_private_key()) == spki(key)  # a restart reads the same pair back
    assert [p.name for p in fresh_key_dir.iterdir()] == ["server_key.pem"]  # no temporary file left behind


def test_server_key_file_setting_names_the_pair_and_is_never_invented(tmp_path, settings, fresh_key_dir):
    mine = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    named = tmp_path / "operator.pem"
    named.write_bytes(mine.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption()))
    settings.DEVICE_SERVER_KEY_FILE = str(named)
    assert spki(keys.server_private_key()) == spki(mine)
    assert not (fresh_key_dir / "server_key.pem").exists()

    keys._server_key.cache_clear()
    settings.DEVICE_SERVER_KEY_FILE = str(tmp_path / "typo.pem")
    with pytest.raises(ImproperlyConfigured, match="typo.pem, which does not exist"):
        keys.server_private_key()
    assert not (tmp_path / "typo.pem").exists()


def test_a_server_key_devices_cannot_use_is_refused(tmp_path, settings, fresh_key_dir):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    named = tmp_path / "small.pem"
    named.write_bytes(small.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    settings.DEVICE_SERVER_KEY_FILE = str(named)
    with pytest.raises(ImproperlyConfigured, match="RSA-2048"):
        keys.server_private_key()


RACER = """
import sys, time, hashlib
from pathlib import Path
from cryptography.hazmat.primitives import serialization
from devices.keys import load_or_create_key_pair
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
key = load_or_create_key_pair(Path(sys.argv[1]))
der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
print(hashlib.sha256(der).hexdigest())
"""


def test_processes_starting_at_once_all_end_up_with_the_same_key(tmp_path):
    """Web, gateway and workers start together on a fresh data directory: each may make a key, but exactly one
    lands, and every process uses that one (not its own)."""
    path = tmp_path / "data" / "server_key.pem"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(path), str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(8)]
    time.sleep(1.0)  # every interpreter is up and waiting
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    on_disk = key_fingerprint(spki(serialization.load_pem_private_key(path.read_bytes(), None)))
    assert [out.strip() for out, _ in outputs] == [on_disk] * 8
    assert sorted(p.name for p in path.parent.iterdir()) == ["server_key.pem"]


# --- the server key file -------------------------------------------------------------------------------------


def test_server_key_file_layout_with_an_ipv4_address(fresh_key_dir):
    data = keys.server_key_file("192.168.1.20")
    der = spki(keys.server_private_key())
    assert len(der) == 294 and len(data) == 518
    assert data[:294] == der and data[294:384] == b"\xff" * 90
    assert data[384:390] == bytes([0, 4, 192, 168, 1, 20])
    assert data[390:] == b"\xff" * 128
    # What a device reads of it: the 256-byte modulus at offset 33, and e = 65537 assumed.
    n = keys.server_private_key().public_key().public_numbers().n
    assert int.from_bytes(data[33:33 + 256], "big") == n


def test_server_key_file_layout_with_a_domain_name(fresh_key_dir):
    data = keys.server_key_file("cloud.example.com")
    assert len(data) == 518
    assert data[384:386] == bytes([1, len("cloud.example.com")])
    assert data[386:386 + 17] == b"cloud.example.com" and data[403:] == b"\xff" * (518 - 403)
    longest = ".".join(["a" * 63, "b" * 63, "c" * 4])  # 132 characters: fills the file exactly
    assert keys.server_key_file(longest)[386:] == longest.encode()


@pytest.mark.parametrize("host,message", [
    ("::1", "not an IPv6 address"),
    ("not a host!", "neither an IPv4 address nor a domain name"),
    ("", "neither an IPv4 address nor a domain name"),
    (".".join(["a" * 63, "b" * 63, "c" * 5]), "at most 132 characters"),
])
def test_server_key_file_refuses_what_a_device_cannot_dial(fresh_key_dir, host, message):
    with pytest.raises(ValidationFailed, match=message):
        keys.server_key_file(host)


def test_server_key_command_writes_the_file_and_the_pem(fresh_key_dir, tmp_path, capsys):
    out = tmp_path / "cloud.der"
    call_command("server_key", "--host", "10.0.0.7", "--out", str(out))
    assert out.read_bytes() == keys.server_key_file("10.0.0.7")
    pem = tmp_path / "cloud.pem"
    call_command("server_key", "--format", "pem", "--out", str(pem))
    assert serialization.load_pem_public_key(pem.read_bytes()).public_numbers() == \
        keys.server_private_key().public_key().public_numbers()
    with pytest.raises(CommandError, match="--host is required"):
        call_command("server_key", "--out", str(out))
    with pytest.raises(CommandError, match="not an IPv6 address"):
        call_command("server_key", "--host", "fe80::1", "--out", str(out))


# --- manufacture --secrets -------------------------------------------------------------------------------------


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _private(b64: str) -> rsa.RSAPrivateKey:
    return serialization.load_der_private_key(base64.b64decode(b64), password=None)


@pytest.mark.django_db
def test_manufacture_writes_json_lines_with_a_key_pair_per_device(tmp_path):
    out, secrets = tmp_path / "ids.txt", tmp_path / "secrets.jsonl"
    call_command("manufacture", "--platform", "photon", "--count", "4", "--out", str(out), "--secrets", str(secrets),
                 "--host", "cloud.example.com", "--port", "15683", "--workers", "2")
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    server, *devices = _lines(secrets)
    assert server == {"kind": "server", "server_key": base64.b64encode(keys.server_key_file("cloud.example.com"))
                      .decode(), "host": "cloud.example.com", "port": 15683}
    assert [d["id"] for d in devices] == out.read_text().split()
    stored = keys.device_public_keys([d["id"] for d in devices])
    for line in devices:
        assert set(line) == {"kind", "id", "platform_id", "serial_number", "iccid", "device_secret", "private_key"}
        assert line["kind"] == "device" and line["platform_id"] == 6 and line["iccid"] is None
        device = Device.objects.get(pk=line["id"])
        assert device.platform_id == 6 and device.serial_number == line["serial_number"]
        private = _private(line["private_key"])
        assert private.key_size == 1024 and private.public_key().public_numbers().e == 65537
        assert stored[line["id"]] == spki(private)  # the stored public key is this device's private key's
        assert len(stored[line["id"]]) == 162 and stored[line["id"]].startswith(bytes.fromhex("30819f300d06"))
    assert len({d["private_key"] for d in devices}) == 4


@pytest.mark.django_db
def test_manufacture_cellular_devices_list_their_iccid(tmp_path):
    secrets = tmp_path / "secrets.jsonl"
    call_command("manufacture", "--platform", "boron", "--count", "2", "--out", str(tmp_path / "ids"),
                 "--secrets", str(secrets))
    server, *devices = _lines(secrets)
    assert server["host"] == "127.0.0.1" and server["port"] == 5683
    for line in devices:
        assert SimCard.objects.get(device_id=line["id"]).iccid == line["iccid"]


@pytest.mark.django_db
def test_manufacture_shared_key_is_one_pair_for_the_batch(tmp_path):
    secrets = tmp_path / "secrets.jsonl"
    call_command("manufacture", "--platform", "6", "--count", "5", "--out", str(tmp_path / "ids"),
                 "--secrets", str(secrets), "--shared-key")
    server, shared, *devices = _lines(secrets)
    assert server["kind"] == "server"
    assert set(shared) == {"kind", "private_key"} and shared["kind"] == "shared_key"
    assert len(devices) == 5 and all("private_key" not in d and d["kind"] == "device" for d in devices)
    public = spki(_private(shared["private_key"]))
    assert keys.device_public_keys([d["id"] for d in devices]) == {d["id"]: public for d in devices}


@pytest.mark.django_db
def test_manufacture_without_secrets_registers_keyless_devices(tmp_path):
    out = tmp_path / "ids.txt"
    call_command("manufacture", "--platform", "6", "--count", "3", "--out", str(out))
    ids = out.read_text().split()
    assert Device.objects.filter(pk__in=ids).count() == 3
    assert not DeviceKey.objects.filter(device_id__in=ids).exists()
    with pytest.raises(CommandError, match="--shared-key needs --secrets"):
        call_command("manufacture", "--platform", "6", "--count", "3", "--out", str(out), "--shared-key")


@pytest.mark.django_db
def test_manufacture_refuses_a_host_the_key_file_cannot_hold(tmp_path):
    with pytest.raises(CommandError, match="not an IPv6 address"):
        call_command("manufacture", "--platform", "6", "--count", "1", "--out", str(tmp_path / "ids"),
                     "--secrets", str(tmp_path / "s"), "--host", "::1")
    assert not Device.objects.exists()


def test_key_pairs_generated_over_several_processes_are_distinct_and_sound():
    pairs = keys.device_key_pairs(7, workers=2, chunk=2)
    assert len(pairs) == 7 and len({public for _, public in pairs}) == 7
    for private, public in pairs:
        key = serialization.load_der_private_key(private, password=None)
        assert spki(key) == public
        # The pair works as the handshake uses it: the server encrypts to the device's public key.
        secret = os.urandom(40)
        sealed = serialization.load_der_public_key(public).encrypt(secret, padding.PKCS1v15())
        assert key.decrypt(sealed, padding.PKCS1v15()) == secret


# --- the gateway's lookups -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_device_public_keys_is_one_query_and_skips_keyless_devices(django_assert_num_queries):
    pairs = keys.device_key_pairs(3, workers=1)
    made = [m.device_id for m in manufacture(6, 3)]
    from devices.services.registry import devices_manufacture
    from products.models import Platform

    keyed = [m.device_id for m in devices_manufacture(platform=Platform.objects.get(pk=6), count=3,
                                                      public_keys=[p for _, p in pairs])]
    with django_assert_num_queries(1):
        found = keys.device_public_keys([*keyed, *made, UNKNOWN_ID, keyed[0]])
    assert found == {device_id: public for device_id, (_, public) in zip(keyed, pairs)}
    assert keys.device_public_key(keyed[1]) == pairs[1][1]
    assert keys.device_public_key(made[0]) is None and keys.device_public_key(UNKNOWN_ID) is None


# --- POST /v1/provisioning/:id -------------------------------------------------------------------------------------


@pytest.fixture
def owned(db):
    """A user with a claimed sandbox device that has a manufactured key."""
    user = UserFactory(email="ada@example.com")
    pairs = keys.device_key_pairs(1, workers=1)
    from devices.services.registry import devices_manufacture
    from products.models import Platform

    device_id = devices_manufacture(platform=Platform.objects.get(pk=6), count=1,
                                    public_keys=[pairs[0][1]])[0].device_id
    Device.objects.filter(pk=device_id).update(owner=user)
    return user, device_id, Api(user_token(user))


def test_uploading_a_key_replaces_the_one_the_gateway_checks(owned):
    user, device_id, api = owned
    old = keys.device_public_key(device_id)
    new = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    # The CLI's exact form: deviceID, publicKey, order, filename, algorithm.
    r = api.post(f"/v1/provisioning/{device_id}", {"deviceID": device_id, "publicKey": pem_public(new),
                                                   "order": "manual_1700000000000", "filename": "cli",
                                                   "algorithm": "rsa"}, form=True)
    assert r.status_code == 200, r.content
    assert r.json() == {"ok": True}
    assert keys.device_public_key(device_id) == spki(new) != old
    assert_audited("device.key.upload", actor=user, target=device_id,
                   data={"fingerprint": key_fingerprint(spki(new)), "replaced": key_fingerprint(old)})


def test_a_pkcs1_pem_and_a_larger_key_are_accepted_on_a_keyless_device(owned):
    user, _, api = owned
    bare = manufacture(6, 1)[0].device_id
    Device.objects.filter(pk=bare).update(owner=user)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = api.post(f"/v1/provisioning/{bare}", {"publicKey": pem_public(key, serialization.PublicFormat.PKCS1)})
    assert r.status_code == 200, r.content
    assert keys.device_public_key(bare) == spki(key)
    assert_audited("device.key.upload", target=bare, data={"fingerprint": key_fingerprint(spki(key)),
                                                           "replaced": None})


def _bad_keys() -> list:
    small = rsa.generate_private_key(public_exponent=3, key_size=1024)
    ecc = ec.generate_private_key(ec.SECP256R1())
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return [
        ("", "publicKey is required"),
        ("hello", "not a PEM public key"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.NoEncryption()).decode(), "That is a private key"),
        (pem_public(ecc), "Only RSA device keys are supported"),
        (pem_public(small), "public exponent must be 65537"),
    ]


def test_garbage_and_keys_devices_cannot_use_are_a_clear_400(owned):
    _, device_id, api = owned
    before = keys.device_public_key(device_id)
    for text, message in _bad_keys():
        r = api.post(f"/v1/provisioning/{device_id}", {"publicKey": text, "algorithm": "rsa"})
        body = _error(r, 400)
        assert message in body["error_description"], (text[:40], body)
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    r = api.post(f"/v1/provisioning/{device_id}", {"publicKey": pem_public(key), "algorithm": "ecc"})
    assert "Only RSA device keys" in _error(r, 400)["error_description"]
    assert keys.device_public_key(device_id) == before
    assert not AuditEntry.objects.filter(action="device.key.upload").exists()


def test_uploads_to_unknown_or_foreign_devices_are_404_and_change_nothing(owned):
    _, device_id, api = owned
    other = UserFactory(email="grace@example.com")
    stranger = Api(user_token(other))
    loose = manufacture(6, 1)[0].device_id  # registered, nobody's
    key = pem_public(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    before = keys.device_public_key(device_id)
    for who, target in ((stranger, device_id), (stranger, UNKNOWN_ID), (api, loose), (api, UNKNOWN_ID)):
        r = who.post(f"/v1/provisioning/{target}", {"publicKey": key})
        _error(r, 404)
    fake = stranger.post(f"/v1/provisioning/{UNKNOWN_ID}", {"publicKey": key})
    real = stranger.post(f"/v1/provisioning/{device_id}", {"publicKey": key})
    assert real.content.decode().replace(device_id, UNKNOWN_ID) == fake.content.decode()
    assert keys.device_public_key(device_id) == before and keys.device_public_key(loose) is None


def test_product_id_scopes_the_upload_to_that_product(cast):
    member = import_devices(cast.product)[0]
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    developer = cast.api("developer")
    r = developer.post(f"/v1/provisioning/{member}", {"publicKey": pem_public(key), "product_id": cast.product.pk})
    assert r.status_code == 200, r.content
    assert keys.device_public_key(member) == spki(key)
    # The same device named under another product the caller reaches is not found there.
    r = cast.api("owner").post(f"/v1/provisioning/{member}", {"publicKey": pem_public(key),
                                                              "product_id": cast.sandbox_product.pk})
    _error(r, 404)
    r = developer.post(f"/v1/provisioning/{member}", {"publicKey": pem_public(key),
                                                      "product_id": cast.outsider_product.pk})
    _error(r, 404)


# --- self-provision: POST /v1/devices {product_id} ---------------------------------------------------------------


def test_self_provision_makes_a_new_unclaimed_device_in_the_product(cast):
    before = cast.product.device_count
    r = cast.api("developer").post("/v1/devices", {"product_id": cast.product.slug})
    assert r.status_code == 200, r.content
    body = r.json()
    device = Device.objects.get(pk=body["id"])
    assert body["product_id"] == cast.product.pk and body["platform_id"] == 13 and body["owner"] is None
    assert device.product_id == cast.product.pk and device.platform_id == 13 and device.owner_id is None
    assert not device.quarantined and device.customer_id is None
    assert not SimCard.objects.filter(device=device).exists()  # a self-provisioned device brings its own SIM
    assert SerialNumber.objects.filter(device=device).exists()
    assert not DeviceKey.objects.filter(device=device).exists()  # its key comes with POST /v1/provisioning
    assert Product.objects.get(pk=cast.product.pk).device_count == before + 1
    assert_audited("devices.import", actor=cast.developer, target=cast.product.slug,
                   data={"lines": 1, "added": 1, "existing": 0, "rejected": 0})


def test_self_provision_counts_against_the_free_limit_and_leaves_nothing_when_refused(db, settings):
    from devices.selectors.limits import FREE_DEVICE_LIMIT
    from console.services import users as user_services

    user = UserFactory(email="ada@example.com")
    product = make_product(user_services.sandbox_of(user), name="Home", platform_id=6)
    import_devices(product, FREE_DEVICE_LIMIT)
    registered = Device.objects.count()
    r = Api(user_token(user)).post("/v1/devices", {"product_id": product.pk})
    assert r.status_code == 400
    assert assert_json_error(r)["error"] == "device_limit_reached"
    assert Device.objects.count() == registered and SerialNumber.objects.count() == registered


# --- the admin ----------------------------------------------------------------------------------------------------


def test_support_staff_give_an_admin_registered_device_its_key(client, db):
    from django.urls import reverse

    staff = UserFactory(email="staff@cyan.test")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    device_id = manufacture(6, 1)[0].device_id  # as the admin's device form registers it: no key
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    url = reverse("admin:devices_devicekey_add")
    bad = client.post(url, {"device": device_id, "public_key_pem": "not a key"})
    assert bad.status_code == 200 and b"not a PEM public key" in bad.content
    assert keys.device_public_key(device_id) is None
    r = client.post(url, {"device": device_id, "public_key_pem": pem_public(key)})
    assert r.status_code == 302, r.content[:800]
    assert keys.device_public_key(device_id) == spki(key)
    assert_audited("device.key.upload", actor=staff, target=device_id,
                   data={"fingerprint": key_fingerprint(spki(key)), "replaced": None})
    again = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    r = client.post(reverse("admin:devices_devicekey_change", args=[device_id]), {"public_key_pem": pem_public(again)})
    assert r.status_code == 302, r.content[:800]
    assert keys.device_public_key(device_id) == spki(again)
    page = client.get(reverse("admin:devices_devicekey_changelist"), {"q": device_id})
    assert key_fingerprint(spki(again)).encode() in page.content
