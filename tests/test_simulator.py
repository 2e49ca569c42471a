"""The fleet simulator's parts on their own: its CoAP codec against RFC 7252 bytes worked out by hand, its
channel's IV rule, the handshake's crypto and the secrets file. (Its behaviour on the wire is in
test_simulator_protocol.py and, against Cyan's gateway, test_simulator_gateway.py.)"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devices.simulator import coap, read_secrets
from devices.simulator.channel import (Channel, ChannelError, HandshakeError, first_message_id, handshake_reply,
                                       load_device_key, open_session, server_address, server_public_key)
from devices.simulator.coap import ACK, CON, NON, CoapError, Message
from tests.support.simulator import (device_key, device_specs, pkcs1_der, server_key_file, server_keys,
                                     write_secrets)


@pytest.fixture(scope="module")
def server_key():
    return server_keys()


# -- CoAP ------------------------------------------------------------------------------------------------------

def test_it_encodes_the_rfc_7252_get_example():
    # RFC 7252 Appendix A, "CON [0x7d34] GET /temperature": Ver 1, T 0, TKL 0, code 0.01, MID 0x7d34, then one
    # option, delta 11 (Uri-Path) and length 11, in one byte 0xBB.
    wire = bytes.fromhex("40017d34bb") + b"temperature"
    message = Message(CON, coap.GET, 0x7D34, options=[(coap.URI_PATH, b"temperature")])
    assert coap.encode(message) == wire
    decoded = coap.decode(wire)
    assert (decoded.type, decoded.code, decoded.message_id, decoded.token) == (CON, coap.GET, 0x7D34, b"")
    assert decoded.path == ["temperature"]


def test_it_encodes_the_rfc_7252_piggybacked_response():
    # "ACK [0x7d34] 2.05 Content, payload 22.3 C": 0x60 (Ver 1, T 2), 0x45, the MID, 0xFF, the payload.
    wire = bytes.fromhex("60457d34ff") + b"22.3 C"
    assert coap.encode(Message(ACK, coap.CONTENT, 0x7D34, payload=b"22.3 C")) == wire
    decoded = coap.decode(wire)
    assert (decoded.type, decoded.code, decoded.payload) == (ACK, coap.CONTENT, b"22.3 C")


def test_it_delta_encodes_options_with_a_token():
    # NON POST token 0x2a, Uri-Path "f", "led" (11: deltas 11 then 0), Uri-Query "on" (15: delta 4).
    wire = bytes.fromhex("51021234" "2a" "b166" "036c6564" "426f6e")
    message = Message(NON, coap.POST, 0x1234, b"\x2a",
                      [(coap.URI_QUERY, b"on"), (coap.URI_PATH, b"f"), (coap.URI_PATH, b"led")])
    assert coap.encode(message) == wire          # sorted by number, repeated options kept in order
    decoded = coap.decode(wire)
    assert decoded.token == b"\x2a"
    assert decoded.path == ["f", "led"]
    assert decoded.queries == [b"on"]


def test_it_uses_the_extended_nibbles():
    # Max-Age (14) = 3600 from 0: delta 14 -> nibble 13 + 1; length 2.        d2 01 0e10
    # a 20-byte Uri-Query (delta 1): length 20 -> nibble 13 + 7.               1d 07 …
    # No-Response (258) after 15: delta 243 -> nibble 13 + 230; length 1.      d1 e6 1a
    # option 2048 after 258: delta 1790 -> nibble 14 + 1521 (0x05f1); a 300-byte value -> nibble 14 + 31.
    query = b"q" * 20
    big = b"x" * 300
    wire = (bytes.fromhex("50020001" "d2010e10" "1d07") + query + bytes.fromhex("d1e61a")
            + bytes.fromhex("ee05f1001f") + big)
    message = Message(NON, coap.POST, 1, options=[(coap.MAX_AGE, b"\x0e\x10"), (coap.URI_QUERY, query),
                                                   (coap.NO_RESPONSE, b"\x1a"), (2048, big)])
    assert coap.encode(message) == wire
    assert coap.decode(wire).options == message.options


@pytest.mark.parametrize("wire, why", [
    ("40", "shorter than a header"),
    ("80010001", "version 2"),
    ("49010001", "token length 9"),
    ("4101000105", None),               # fine: a 1-byte token and nothing else
    ("42010001aa", "truncated token"),
    ("40010001ff", "payload marker with no payload"),
    ("40010001f1", "reserved nibble 15"),
    ("40010001b3616263", None),         # fine
    ("40010001b561", "option past the end"),
    ("40010001d0", "truncated extended delta"),
    ("40000001ff00", "empty message with a payload"),
])
def test_it_refuses_malformed_messages(wire, why):
    if why is None:
        coap.decode(bytes.fromhex(wire))
    else:
        with pytest.raises(CoapError):
            coap.decode(bytes.fromhex(wire))


# -- the channel -----------------------------------------------------------------------------------------------

def _cbc(key, iv, data, *, decrypt=False):
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def test_each_sent_message_is_chained_on_the_first_block_of_the_one_before():
    session = os.urandom(40)
    key, iv = session[:16], session[16:32]
    channel = Channel(session)
    first, second, third = b"a" * 40, b"b" * 100, b"c"     # 48, 112 and 16 bytes of ciphertext
    frames = [channel.seal(first), channel.seal(second), channel.seal(third)]
    lengths = [struct.unpack(">H", frame[:2])[0] for frame in frames]
    assert lengths == [48, 112, 16]
    c1, c2, c3 = (frame[2:] for frame in frames)
    assert _cbc(key, iv, c1, decrypt=True) == first + bytes([8]) * 8
    assert _cbc(key, c1[:16], c2, decrypt=True) == second + bytes([12]) * 12
    assert _cbc(key, c2[:16], c3, decrypt=True) == third + bytes([15]) * 15
    # Plain CBC chaining (the last block) would be a different IV: the rule is really the first block.
    assert c1[-16:] != c1[:16]
    assert _cbc(key, c1[-16:], c2, decrypt=True)[:16] != second[:16]


def test_each_received_message_moves_the_iv_to_its_first_block():
    session = os.urandom(40)
    key, iv = session[:16], session[16:32]
    plain = [b"x" * 33, b"y" * 37, b"z" * 5]
    ciphertexts = []
    for text in plain:
        pad = 16 - len(text) % 16
        ciphertext = _cbc(key, iv, text + bytes([pad]) * pad)
        ciphertexts.append(ciphertext)
        iv = ciphertext[:16]
    channel = Channel(session)
    assert [channel.open(c) for c in ciphertexts] == plain
    # A peer that chains on the last block garbles the next message's first block.
    wrong = Channel(session)
    assert wrong.open(ciphertexts[0]) == plain[0]
    wrong.receive_iv = ciphertexts[0][-16:]
    assert wrong.open(ciphertexts[1]) != plain[1]


def test_it_refuses_bad_padding_and_partial_blocks():
    session = os.urandom(40)
    with pytest.raises(ChannelError):
        Channel(session).open(b"\x00" * 15)
    with pytest.raises(ChannelError):
        Channel(session).open(_cbc(session[:16], session[16:32], b"\x00" * 15 + b"\x05"))


def test_message_ids_start_after_the_salt_read_little_endian():
    session = bytes(32) + bytes.fromhex("3412") + bytes(6)
    assert first_message_id(session) == 0x1235
    assert first_message_id(bytes(32) + b"\xff\xff" + bytes(6)) == 0


# -- the handshake's crypto ------------------------------------------------------------------------------------

def test_the_handshake_reply_carries_nonce_id_and_public_key(server_key):
    device = device_key()
    nonce, device_id = os.urandom(40), os.urandom(12)
    public_der = device.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    reply = handshake_reply(server_key.public_key(), nonce, device_id, public_der)
    assert len(reply) == 256
    plain = server_key.decrypt(reply, padding.PKCS1v15())
    assert len(plain) == 214 and len(public_der) == 162 and public_der.startswith(bytes.fromhex("30819f300d06"))
    assert plain == nonce + device_id + public_der


def _server_half(server_key, device, session, *, sign_what=None):
    encrypted = device.public_key().encrypt(session, padding.PKCS1v15())
    digest = hmac.new(session, encrypted, hashlib.sha1).digest()
    return encrypted + server_key.sign(sign_what or digest, padding.PKCS1v15(), utils.NoDigestInfo())


def test_it_opens_a_session_signed_over_the_raw_hmac(server_key):
    device, session = device_key(), os.urandom(40)
    assert open_session(server_key.public_key(), device, _server_half(server_key, device, session)) == session


def test_it_refuses_a_bad_signature_or_a_short_answer(server_key):
    device, session = device_key(), os.urandom(40)
    with pytest.raises(HandshakeError, match="signature"):
        open_session(server_key.public_key(), device,
                     _server_half(server_key, device, session, sign_what=b"\x00" * 20))
    other = server_keys()
    with pytest.raises(HandshakeError, match="signature"):
        open_session(server_key.public_key(), device, _server_half(other, device, session))
    with pytest.raises(HandshakeError, match="384"):
        open_session(server_key.public_key(), device, _server_half(server_key, device, session)[:383])
    with pytest.raises(HandshakeError, match="session key|signature"):   # OpenSSL rejects implicitly
        open_session(server_key.public_key(), device, os.urandom(384))


# -- keys and the secrets file ---------------------------------------------------------------------------------

def test_the_server_key_file_is_read_from_its_spki_and_address(server_key):
    key_file = server_key_file(server_key.public_key(), "10.1.2.3")
    assert len(key_file) == 384 + 6 + 1 and key_file[294:384] == b"\xff" * 90
    assert server_public_key(key_file).public_numbers() == server_key.public_key().public_numbers()
    assert server_address(key_file) == "10.1.2.3"
    assert server_address(server_key_file(server_key.public_key(), "cloud.example.com")) == "cloud.example.com"
    assert server_address(key_file[:384]) is None


def test_it_reads_a_secrets_file_with_a_key_per_device(tmp_path, server_key):
    specs = device_specs(3, platform_id=3)
    path = tmp_path / "secrets.jsonl"
    write_secrets(path, server_key=server_key_file(server_key.public_key(), "10.0.0.9"), devices=specs,
                  host=None, port=5999)
    secrets = read_secrets(str(path), offset=1, count=1)
    assert (secrets.host, secrets.port) == ("10.0.0.9", 5999)       # the host from the key file's address
    assert [d.device_id for d in secrets.devices] == [specs[1].device_id]
    assert secrets.devices[0].platform_id == 3
    assert load_device_key(secrets.devices[0].private_key).private_numbers() == \
        load_device_key(specs[1].private_key).private_numbers()
    assert len(read_secrets(str(path)).devices) == 3


def test_a_shared_key_fleet_holds_one_key_object(tmp_path, server_key):
    shared = device_key()
    specs = device_specs(4, key=shared)
    path = tmp_path / "secrets.jsonl"
    write_secrets(path, server_key=server_key_file(server_key.public_key()), devices=specs, shared_key=shared)
    devices = read_secrets(str(path)).devices
    assert all(d.private_key is None for d in devices)
    assert len({id(d.shared_key) for d in devices}) == 1
    assert pkcs1_der(devices[0].shared_key) == pkcs1_der(shared)


def test_it_refuses_a_malformed_secrets_file(tmp_path, server_key):
    path = tmp_path / "secrets.jsonl"
    path.write_text('{"kind":"device","id":"00112233445566778899aabb","platform_id":6}\n')
    with pytest.raises(ValueError, match="private_key"):
        read_secrets(str(path))
    path.write_text('{"kind":"server","server_key":""}\n{"kind":"device","id":"xyz","platform_id":6,'
                    '"private_key":""}\n')
    with pytest.raises(ValueError, match="24 hex"):
        read_secrets(str(path))
