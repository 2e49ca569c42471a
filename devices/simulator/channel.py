"""The device's side of the Gen 2 handshake and of the AES channel that follows it.

Sizes and rules from the protocol fact sheet (docs/device-protocol.md): a 40-byte nonce in; 256 bytes out
(RSA PKCS#1 v1.5 with the server key over nonce ‖ 12-byte id ‖ the device's SPKI DER); 384 bytes in (the 40
session bytes encrypted to the device key, then the server's signature over their HMAC-SHA1, PKCS#1 v1.5
with no DigestInfo). After that, each message is a 2-byte length and AES-128-CBC with PKCS#7, and each
direction's next IV is the first 16 bytes of the ciphertext it just carried.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

NONCE_SIZE = 40
HANDSHAKE_OUT_SIZE = 256
HANDSHAKE_IN_SIZE = 384
SESSION_SIZE = 40
SERVER_KEY_SPKI_SIZE = 294

_PKCS1 = padding.PKCS1v15()
_NO_DIGEST_INFO = utils.NoDigestInfo()


class HandshakeError(Exception):
    """The server's half of the handshake did not check out (bad length, undecryptable, bad signature)."""


class ChannelError(Exception):
    """A message on the channel could not be decrypted (bad length or padding)."""


def server_public_key(key_file: bytes) -> rsa.RSAPublicKey:
    """The server's public key from a server key file: only its first 294 bytes, the SPKI, are read."""
    key = serialization.load_der_public_key(key_file[:SERVER_KEY_SPKI_SIZE])
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the server key file does not hold an RSA public key")
    return key


def server_address(key_file: bytes) -> str | None:
    """The host the key file names at byte 384 (type 0 IPv4, type 1 domain name), or None if there is none."""
    if len(key_file) < 386:
        return None
    kind, length = key_file[384], key_file[385]
    value = key_file[386:386 + length]
    if len(value) != length:
        return None
    if kind == 0 and length == 4:
        return ".".join(str(b) for b in value)
    if kind == 1 and length:
        return value.decode("ascii", "replace")
    return None


def load_device_key(der: bytes) -> rsa.RSAPrivateKey:
    """A device's RSA private key from PKCS#1 DER. The key came from our own manufacturing step, so the
    slow consistency check is skipped (it would cost more than the rest of the handshake)."""
    key = serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a device key must be RSA")
    return key


def device_public_der(key: rsa.RSAPrivateKey) -> bytes:
    """The device's public key as the handshake carries it: SubjectPublicKeyInfo DER (162 bytes for RSA-1024)."""
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def handshake_reply(server_key: rsa.RSAPublicKey, nonce: bytes, device_id: bytes, public_der: bytes) -> bytes:
    """The 256 bytes the device answers the nonce with."""
    return server_key.encrypt(nonce + device_id + public_der, _PKCS1)


def open_session(server_key: rsa.RSAPublicKey, device_key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """Check the server's 384 bytes and return the 40 session bytes (AES key 16 ‖ IV 16 ‖ salt 8)."""
    if len(data) != HANDSHAKE_IN_SIZE:
        raise HandshakeError(f"expected {HANDSHAKE_IN_SIZE} bytes, got {len(data)}")
    ciphertext, signature = data[:128], data[128:]
    try:
        session = device_key.decrypt(ciphertext, _PKCS1)
    except ValueError:
        raise HandshakeError("the session key does not decrypt with the device key") from None
    if len(session) != SESSION_SIZE:
        raise HandshakeError(f"the session key is {len(session)} bytes, not {SESSION_SIZE}")
    digest = hmac.new(session, ciphertext, hashlib.sha1).digest()
    try:
        server_key.verify(signature, digest, _PKCS1, _NO_DIGEST_INFO)
    except InvalidSignature:
        raise HandshakeError("the server's signature does not verify") from None
    return session


def first_message_id(session: bytes) -> int:
    """The first CoAP message id the device uses: little-endian uint16 of the salt's first two bytes, plus 1."""
    return (struct.unpack_from("<H", session, 32)[0] + 1) & 0xFFFF


class Channel:
    """The AES-128-CBC channel of one connection: two IVs that move on with every message."""

    __slots__ = ("key", "send_iv", "receive_iv")

    def __init__(self, session: bytes):
        self.key = session[:16]
        self.send_iv = session[16:32]
        self.receive_iv = session[16:32]

    def seal(self, plaintext: bytes) -> bytes:
        """Length-prefixed ciphertext of one message; the send IV becomes its first block."""
        pad = 16 - len(plaintext) % 16
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.send_iv)).encryptor()
        ciphertext = encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()
        self.send_iv = ciphertext[:16]
        return struct.pack(">H", len(ciphertext)) + ciphertext

    def open(self, ciphertext: bytes) -> bytes:
        """Plaintext of one message's ciphertext (without its length); the receive IV becomes its first block."""
        if not ciphertext or len(ciphertext) % 16:
            raise ChannelError(f"ciphertext of {len(ciphertext)} bytes is not whole AES blocks")
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.receive_iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        self.receive_iv = ciphertext[:16]
        pad = padded[-1]
        if not 1 <= pad <= 16 or padded[-pad:] != bytes((pad,)) * pad:
            raise ChannelError("bad PKCS#7 padding")
        return padded[:-pad]
