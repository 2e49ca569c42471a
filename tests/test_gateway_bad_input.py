"""Bad input on the device port: each kind closes that one connection with a logged reason, and a device that
behaves keeps its session throughout (issue 12, "Reliability")."""

from __future__ import annotations

import logging
import struct
import time

import pytest

from devices import presence
from devices.keys import server_private_key
from devices.models import DeviceKey
from tests.support.fleet import ids, manufacture
from tests.support.gateway import running_gateway
from tests.support.rawdevice import RawDevice, new_device_key, random_bytes, spki

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def keyed():
    """Two registered Photons with keys on file: (ids, private keys)."""
    made = ids(manufacture(6, 2))
    keys = [new_device_key() for _ in made]
    for device_id, key in zip(made, keys):
        DeviceKey.objects.update_or_create(device_id=device_id, defaults={"public_key": spki(key)})
    return made, keys


@pytest.fixture
def gateway(settings):
    settings.GATEWAY_HANDSHAKE_TIMEOUT = 1.0
    settings.GATEWAY_MAX_HANDSHAKES_PER_ADDRESS = 20
    settings.GATEWAY_MAX_MESSAGES_PER_SECOND = 30
    with running_gateway() as gw:
        yield gw


def server_public():
    return server_private_key().public_key()


def closed_with(caplog, dev: RawDevice, reason: str) -> None:
    assert dev.closed_by_server(5), "the gateway kept the connection open"
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not any(reason in r.getMessage() for r in caplog.records):
        time.sleep(0.02)
    messages = [r.getMessage() for r in caplog.records if r.name == "devices.gateway"]
    assert any(reason in m for m in messages), messages


def online_device(gateway, keyed) -> RawDevice:
    """The well-behaved neighbour: handshaken, Hello answered, and online in presence."""
    (device_id, _), (key, _) = keyed
    dev = RawDevice(gateway.port)
    dev.handshake(server_public(), device_id, key)
    first = dev.hello(6, 0xFFFF, 6)
    assert first[4:] .startswith(b"\xb1h"), first  # the server's own Hello: Uri-Path "h"
    deadline = time.monotonic() + 5
    while presence.device_location(device_id) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert presence.device_location(device_id) is not None
    return dev


def still_served(dev: RawDevice) -> None:
    dev.ping()
    answer = dev.recv_plain()
    assert answer[0] >> 4 & 0x3 == 2 and answer[1] == 0, answer  # an empty ACK


@pytest.mark.parametrize("first_byte, reason", [
    # Below the modulus, the block decrypts, and OpenSSL's implicit rejection turns its bad PKCS#1 padding into
    # random plaintext rather than an error (no padding oracle): it fails at the nonce check.
    (0x00, "wrong nonce"),
    # At or above the modulus (whose top byte is at most 0xff), it is no RSA block at all.
    (0xFF, "does not decrypt with the server key"),
])
def test_garbage_instead_of_the_handshake(gateway, keyed, caplog, first_byte, reason):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    good = online_device(gateway, keyed)
    bad = RawDevice(gateway.port)
    bad.read(40)
    bad.sock.sendall(bytes([first_byte]) + (b"\xff" * 255 if first_byte == 0xFF else random_bytes(255)))
    closed_with(caplog, bad, reason)
    still_served(good)


def test_more_bytes_than_a_handshake(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    bad = RawDevice(gateway.port)
    bad.read(40)
    bad.sock.sendall(random_bytes(300))
    closed_with(caplog, bad, "where the handshake sends 256")


def test_truncated_handshake_times_out(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    good = online_device(gateway, keyed)
    bad = RawDevice(gateway.port)
    bad.read(40)
    bad.sock.sendall(random_bytes(100))
    closed_with(caplog, bad, "handshake: nothing for 1 s")
    still_served(good)


def test_wrong_nonce(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    (device_id, _), (key, _) = keyed
    bad = RawDevice(gateway.port)
    bad.read(40)
    bad.sock.sendall(bad.handshake_message(server_public(), random_bytes(40), device_id, key))
    closed_with(caplog, bad, "wrong nonce")


def test_unknown_device_id(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    bad = RawDevice(gateway.port)
    nonce = bad.read(40)
    bad.sock.sendall(bad.handshake_message(server_public(), nonce, "0123456789abcdef01234567", new_device_key()))
    closed_with(caplog, bad, "unknown device id")


def test_key_that_does_not_match_the_one_on_file(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    (device_id, _), _ = keyed
    bad = RawDevice(gateway.port)
    nonce = bad.read(40)
    bad.sock.sendall(bad.handshake_message(server_public(), nonce, device_id, new_device_key()))
    closed_with(caplog, bad, "does not match the key on file")
    assert presence.device_location(device_id) is None


def test_oversized_frame(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    (_, device_id), (_, key) = keyed
    good = online_device(gateway, keyed)
    bad = RawDevice(gateway.port)
    bad.handshake(server_public(), device_id, key)
    bad.sock.sendall(b"\xff\xff" + random_bytes(64))
    closed_with(caplog, bad, "a frame of 65535 bytes")
    still_served(good)


@pytest.mark.parametrize("plaintext, reason", [
    (b"\x40", "shorter than a CoAP header"),
    (b"\x80\x02\x00\x01", "CoAP version 2"),
    (b"\x4f\x02\x00\x01", "token length 15"),
    (b"\x50\x02\x00\x01\xdd", "option runs past the end"),
    (b"\x50\x02\x00\x01\xff", "payload marker with no payload"),
])
def test_malformed_coap(gateway, keyed, caplog, plaintext, reason):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    (device_id, _), (key, _) = keyed
    bad = RawDevice(gateway.port)
    bad.handshake(server_public(), device_id, key)
    bad.send_plain(plaintext)
    closed_with(caplog, bad, reason)


def test_message_sealed_with_another_session(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    (device_id, _), (key, _) = keyed
    bad = RawDevice(gateway.port)
    bad.handshake(server_public(), device_id, key)
    bad.key = random_bytes(16)
    bad.send_plain(b"\x50\x02\x00\x01")
    closed_with(caplog, bad, "bad padding")


def test_request_before_the_hello(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    (device_id, _), (key, _) = keyed
    bad = RawDevice(gateway.port)
    bad.handshake(server_public(), device_id, key)
    bad.send_plain(bad.coap(0, 0x01, token=b"\x01", options=bytes([0xB1]) + b"t"))
    closed_with(caplog, bad, "/t before the Hello")


def test_short_hello(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    (device_id, _), (key, _) = keyed
    bad = RawDevice(gateway.port)
    bad.handshake(server_public(), device_id, key)
    bad.send_plain(bad.coap(1, 0x02, options=bytes([0xB1]) + b"h", payload=struct.pack(">HH", 6, 1)))
    closed_with(caplog, bad, "a Hello of 4 bytes")


def test_message_flood_from_one_connection(gateway, keyed, caplog):
    caplog.set_level(logging.INFO, logger="devices.gateway")
    good = online_device(gateway, keyed)
    (_, device_id), (_, key) = keyed
    bad = RawDevice(gateway.port)
    bad.handshake(server_public(), device_id, key)
    bad.hello(6, 0xFFFF, 6)
    sent = 0
    for _ in range(40):
        try:
            bad.ping()
        except (BrokenPipeError, ConnectionResetError):
            break  # the gateway may close before the last pings leave this side
        sent += 1
    assert sent > 30, f"the gateway closed the connection after only {sent} pings"
    closed_with(caplog, bad, "flood: more than 30 messages in a second")
    still_served(good)


def test_handshake_flood_from_one_address(gateway, keyed, caplog):
    caplog.set_level(logging.DEBUG, logger="devices.gateway")
    good = online_device(gateway, keyed)
    held = [RawDevice(gateway.port) for _ in range(20)]
    for dev in held:
        dev.read(40)  # each got its nonce and now sits on it
    extra = RawDevice(gateway.port)
    closed_with(caplog, extra, "20 handshakes already in progress from this address")
    still_served(good)
    for dev in held:
        dev.close()
