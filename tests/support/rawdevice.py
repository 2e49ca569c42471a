"""A byte-level device for attacking the gateway in tests: it can stop anywhere in the handshake, lie in it, or
send frames no device would. Written with `cryptography` alone, apart from the gateway's code (a well-behaved
device is the fleet simulator's job)."""

from __future__ import annotations

import os
import socket
import struct

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives import padding as sympadding


def new_device_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def spki(key) -> bytes:
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class RawDevice:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.send_iv = self.recv_iv = self.key = None
        self.mid = 0

    def read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the socket (reads EOF or a reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def handshake_message(self, server_public, nonce: bytes, device_id: str, key) -> bytes:
        return server_public.encrypt(nonce + bytes.fromhex(device_id) + spki(key), padding.PKCS1v15())

    def handshake(self, server_public, device_id: str, key) -> None:
        """The whole handshake, verifying the server's signature; leaves the channel open."""
        nonce = self.read(40)
        self.sock.sendall(self.handshake_message(server_public, nonce, device_id, key))
        reply = self.read(384)
        session = key.decrypt(reply[:128], padding.PKCS1v15())
        mac = hmac.HMAC(session, hashes.SHA1())
        mac.update(reply[:128])
        server_public.verify(reply[128:], mac.finalize(), padding.PKCS1v15(), utils.NoDigestInfo())
        self.key, self.send_iv, self.recv_iv = session[:16], session[16:32], session[16:32]
        self.mid = int.from_bytes(session[32:34], "little") + 1

    def send_plain(self, plaintext: bytes) -> None:
        padder = sympadding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.send_iv)).encryptor()
        ct = enc.update(padder.update(plaintext) + padder.finalize()) + enc.finalize()
        self.send_iv = ct[:16]
        self.sock.sendall(len(ct).to_bytes(2, "big") + ct)

    def recv_plain(self) -> bytes:
        size = int.from_bytes(self.read(2), "big")
        ct = self.read(size)
        dec = Cipher(algorithms.AES(self.key), modes.CBC(self.recv_iv)).decryptor()
        padded = dec.update(ct) + dec.finalize()
        self.recv_iv = ct[:16]
        unpadder = sympadding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()

    def coap(self, kind: int, code: int, token: bytes = b"", options: bytes = b"", payload: bytes = b"") -> bytes:
        """A CoAP message, options given already encoded."""
        self.mid = (self.mid + 1) & 0xFFFF
        head = bytes([0x40 | (kind << 4) | len(token), code]) + self.mid.to_bytes(2, "big") + token
        return head + options + ((b"\xff" + payload) if payload else b"")

    def hello(self, product_id: int, firmware_version: int, platform_id: int, flags: int = 0x36) -> bytes:
        """Send the Hello (NON POST /h) and return the server's first message (its own Hello)."""
        payload = struct.pack(">HHBBH", product_id, firmware_version, 0, flags, platform_id)
        self.send_plain(self.coap(1, 0x02, options=bytes([0xB1]) + b"h", payload=payload))
        return self.recv_plain()

    def ping(self) -> None:
        self.send_plain(self.coap(0, 0x00))

    def close(self) -> None:
        self.sock.close()


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
