"""The server side of the Gen 2 handshake and the AES channel after it (docs/device-protocol.md).

Every primitive is `cryptography`'s: RSA PKCS#1 v1.5 encryption and decryption, the type-1 signature over a raw
HMAC (`NoDigestInfo`: the protocol signs the 20 HMAC bytes themselves, not a DigestInfo), HMAC-SHA1 and
AES-128-CBC. Only the framing and the protocol's IV rule are written here.
"""

from __future__ import annotations

import hmac as std_hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac, padding as sympadding
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import load_der_public_key

NONCE_BYTES = 40
DEVICE_CIPHERTEXT_BYTES = 256   # RSA-2048 block from the device
SESSION_BYTES = 40              # AES key 16 | IV 16 | salt 8
DEVICE_ID_BYTES = 12
MAX_FRAME = 4096                # largest channel message accepted from a device (its own buffer is ~1 KB)


class HandshakeError(ValueError):
    """The device's handshake message is not what the protocol says (the reason is logged)."""


@dataclass(frozen=True)
class DeviceHello:
    """What the device's 256-byte handshake message carries."""

    device_id: str
    public_key_der: bytes


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def open_device_message(server_key: rsa.RSAPrivateKey, ciphertext: bytes, nonce: bytes) -> DeviceHello:
    """Decrypt the device's message and check it: the nonce we sent, a 12-byte id, then its public key."""
    try:
        plain = server_key.decrypt(ciphertext, padding.PKCS1v15())
    except ValueError:
        raise HandshakeError("the handshake message does not decrypt with the server key") from None
    # Nonce first: OpenSSL's implicit rejection answers a bad block with random plaintext of any length, and
    # that must read as the same failure as a forged nonce.
    if len(plain) < NONCE_BYTES or not std_hmac.compare_digest(plain[:NONCE_BYTES], nonce):
        raise HandshakeError("wrong nonce")
    if len(plain) < NONCE_BYTES + DEVICE_ID_BYTES + 1:
        raise HandshakeError(f"the handshake message is {len(plain)} bytes")
    device_id = plain[NONCE_BYTES:NONCE_BYTES + DEVICE_ID_BYTES].hex()
    return DeviceHello(device_id, plain[NONCE_BYTES + DEVICE_ID_BYTES:])


def same_public_key(presented_der: bytes, stored_der: bytes) -> bool:
    """The device's key is the stored one: compared as numbers, so two encodings of one key agree."""
    if presented_der == stored_der:
        return True
    try:
        a, b = load_der_public_key(presented_der), load_der_public_key(stored_der)
    except (ValueError, TypeError):
        return False
    return (isinstance(a, rsa.RSAPublicKey) and isinstance(b, rsa.RSAPublicKey)
            and a.public_numbers() == b.public_numbers())


def session_reply(server_key: rsa.RSAPrivateKey, device_key_der: bytes) -> tuple[bytes, bytes]:
    """Draw the session bytes and build the 384-byte answer: the bytes encrypted to the device's key, then the
    server's signature over HMAC-SHA1(session bytes, that ciphertext). Returns (session bytes, answer)."""
    device_key = load_der_public_key(device_key_der)
    if not isinstance(device_key, rsa.RSAPublicKey):
        raise HandshakeError("the device key is not RSA")
    session = os.urandom(SESSION_BYTES)
    encrypted = device_key.encrypt(session, padding.PKCS1v15())
    mac = hmac.HMAC(session, hashes.SHA1())
    mac.update(encrypted)
    signature = server_key.sign(mac.finalize(), padding.PKCS1v15(), utils.NoDigestInfo())
    return session, encrypted + signature


class Channel:
    """AES-128-CBC both ways with PKCS#7, framed by a 2-byte big-endian length. After each message a direction's
    next IV is the first 16 bytes of that message's ciphertext (not CBC's last block)."""

    __slots__ = ("_key", "_send_iv", "_recv_iv")

    def __init__(self, session: bytes):
        self._key = algorithms.AES(session[:16])
        self._send_iv = session[16:32]
        self._recv_iv = session[16:32]

    def seal(self, plaintext: bytes) -> bytes:
        padder = sympadding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        enc = Cipher(self._key, modes.CBC(self._send_iv)).encryptor()
        ciphertext = enc.update(padded) + enc.finalize()
        self._send_iv = ciphertext[:16]
        return len(ciphertext).to_bytes(2, "big") + ciphertext

    def open(self, ciphertext: bytes) -> bytes:
        if not ciphertext or len(ciphertext) % 16:
            raise HandshakeError(f"a {len(ciphertext)}-byte message is not whole AES blocks")
        dec = Cipher(self._key, modes.CBC(self._recv_iv)).decryptor()
        padded = dec.update(ciphertext) + dec.finalize()
        self._recv_iv = ciphertext[:16]
        unpadder = sympadding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise HandshakeError("bad padding: the message was not sealed with this session") from None


def salt_message_id(session: bytes) -> int:
    """The device's first message id: little-endian uint16 of the salt's first two bytes, plus one."""
    return (int.from_bytes(session[32:34], "little") + 1) & 0xFFFF
