"""Device keys and the server key (docs/device-protocol.md "Keys").

* The **server key pair** (RSA-2048) proves the cloud to devices: made on first use and kept in the data
  directory (`server_key.pem`, mode 0600), or read from the PEM file `DEVICE_SERVER_KEY_FILE` names.
* The **server key file** is what a device holds of it: the public key plus the address it dials.
* Each device's **public key** (SPKI DER) sits in `DeviceKey`; the gateway looks it up per handshake, with no
  cache, so a key uploaded with `POST /v1/provisioning/:id` is the one the next handshake checks.
* Device key pairs (RSA-1024, as Device OS makes them) for `manage.py manufacture`, generated over all cores.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from console.datadir import private_dir
from console.errors import ValidationFailed

SERVER_KEY_BITS = 2048
DEVICE_KEY_BITS = 1024  # what Device OS generates for a Gen 2 device
MIN_DEVICE_KEY_BITS = 1024
MAX_DEVICE_KEY_BITS = 4096
PUBLIC_EXPONENT = 65537  # the device assumes it for the server key, and Device OS uses it for its own

SERVER_KEY_FILE_SIZE = 518  # the size of the file `particle keys server` writes, and of the one seen on a device
ADDRESS_OFFSET = 384
ADDRESS_IPV4 = 0
ADDRESS_DOMAIN = 1
MAX_DOMAIN_LENGTH = SERVER_KEY_FILE_SIZE - ADDRESS_OFFSET - 2  # type and length bytes
_DOMAIN = re.compile(r"(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?", re.ASCII)

_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


# --- the server key pair ---------------------------------------------------------------------------------------


def server_key_path() -> Path:
    """Where the server key pair lives: DEVICE_SERVER_KEY_FILE, else `server_key.pem` in the data directory."""
    named = getattr(settings, "DEVICE_SERVER_KEY_FILE", "")
    return Path(named) if named else Path(settings.DATA_DIR) / "server_key.pem"


def load_or_create_key_pair(path: Path, *, create: bool = True) -> rsa.RSAPrivateKey:
    """The RSA-2048 private key in the PEM file `path`, made there first when it is missing and `create`.

    Several processes (web, gateway, workers) may start at once on a fresh data directory, so a new key is
    written to a temporary file and *linked* into place: the link fails when another process got there first
    (a rename would silently replace the winner's key, leaving the two processes with different keys), and the
    loser then reads the winner's file."""
    if not path.exists():
        if not create:
            raise ImproperlyConfigured(f"DEVICE_SERVER_KEY_FILE names {path}, which does not exist; make one with "
                                       f"`openssl genrsa -out {path} 2048`, or unset it to let Cyan make one")
        key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=SERVER_KEY_BITS)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".server_key.", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race: use its key
        finally:
            os.unlink(tmp)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != SERVER_KEY_BITS:
        raise ImproperlyConfigured(f"{path} must hold an RSA-{SERVER_KEY_BITS} private key (PEM): Gen 2 devices "
                                   f"read a {SERVER_KEY_BITS // 8}-byte modulus and nothing else")
    if key.public_key().public_numbers().e != PUBLIC_EXPONENT:
        raise ImproperlyConfigured(f"{path}: the public exponent must be {PUBLIC_EXPONENT}, which devices assume")
    return key


@functools.cache
def _server_key(path: str) -> rsa.RSAPrivateKey:
    named = bool(getattr(settings, "DEVICE_SERVER_KEY_FILE", ""))
    return load_or_create_key_pair(Path(path), create=not named)  # an operator's named file is never invented


def server_private_key() -> rsa.RSAPrivateKey:
    """The cloud's RSA-2048 private key (made on first use), loaded once per process."""
    return _server_key(str(server_key_path()))


def server_public_key_der() -> bytes:
    """The server's public key as SubjectPublicKeyInfo DER (294 bytes)."""
    return server_private_key().public_key().public_bytes(_DER, _SPKI)


def server_address_tlv(host: str) -> bytes:
    """The address part of the server key file: type 0 + 4 bytes for an IPv4 address, type 1 + length + the
    name for a domain name. Refuses what a Gen 2 device cannot dial (IPv6) or what does not fit the file."""
    host = (host or "").strip()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv4Address):
        return bytes([ADDRESS_IPV4, 4]) + address.packed
    if address is not None:
        raise ValidationFailed("The server key file holds an IPv4 address or a domain name, not an IPv6 address",
                               field="host")
    if not _DOMAIN.fullmatch(host):
        raise ValidationFailed(f"{host!r} is neither an IPv4 address nor a domain name", field="host")
    if len(host) > MAX_DOMAIN_LENGTH:
        raise ValidationFailed(f"A domain name in the server key file can be at most {MAX_DOMAIN_LENGTH} "
                               f"characters; {host!r} has {len(host)}", field="host")
    return bytes([ADDRESS_DOMAIN, len(host)]) + host.encode("ascii")


def server_key_file(host: str) -> bytes:
    """The server key file devices hold (518 bytes): the public key (SPKI DER) padded with 0xFF to 384 bytes,
    then the address `host` as TLV, then 0xFF."""
    der = server_public_key_der()
    tlv = server_address_tlv(host)
    return (der.ljust(ADDRESS_OFFSET, b"\xff") + tlv).ljust(SERVER_KEY_FILE_SIZE, b"\xff")


# --- device public keys ----------------------------------------------------------------------------------------


def device_public_keys(device_ids: Iterable[str]) -> dict[str, bytes]:
    """id -> the device's public key (SPKI DER) for those of `device_ids` that have one, in one query. Read
    fresh each time: an uploaded key must be what the very next handshake checks."""
    from devices.models import DeviceKey  # this module is loaded before the app registry in child processes

    ids = list(dict.fromkeys(device_ids))
    return {device_id: bytes(der) for device_id, der in
            DeviceKey.objects.filter(device_id__in=ids).values_list("device_id", "public_key")}


def device_public_key(device_id: str) -> bytes | None:
    """The device's public key (SPKI DER), or None when it has none."""
    return device_public_keys([device_id]).get(device_id)


def public_key_der(text: str | bytes) -> bytes:
    """An uploaded public key — PEM, as SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC
    KEY`) — as SPKI DER, refused unless it is an RSA key Device OS could hold (1024 to 4096 bits, e = 65537)."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
    data = data.strip()
    if not data:
        raise ValidationFailed("publicKey is required: the device's public key in PEM format", field="publicKey")
    if b"PRIVATE KEY" in data:
        raise ValidationFailed("That is a private key: send only the public key (openssl rsa -pubout)",
                               field="publicKey")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ValidationFailed("publicKey is not a PEM public key (-----BEGIN PUBLIC KEY----- ...)",
                               field="publicKey")
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValidationFailed("Only RSA device keys are supported (Gen 2 devices use RSA-1024)", field="publicKey")
    if not MIN_DEVICE_KEY_BITS <= key.key_size <= MAX_DEVICE_KEY_BITS:
        raise ValidationFailed(f"An RSA device key must have {MIN_DEVICE_KEY_BITS} to {MAX_DEVICE_KEY_BITS} bits; "
                               f"this one has {key.key_size}", field="publicKey")
    if key.public_numbers().e != PUBLIC_EXPONENT:
        raise ValidationFailed(f"The key's public exponent must be {PUBLIC_EXPONENT}", field="publicKey")
    return key.public_bytes(_DER, _SPKI)


# --- device key pairs ------------------------------------------------------------------------------------------


def device_key_pair() -> tuple[bytes, bytes]:
    """A new RSA-1024 device key pair: (private key as PKCS#1 DER, as the device stores it; public key as SPKI
    DER, as the cloud stores it)."""
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=DEVICE_KEY_BITS)
    private = key.private_bytes(_DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    return private, key.public_key().public_bytes(_DER, _SPKI)


def _key_pairs(count: int) -> list[tuple[bytes, bytes]]:
    return [device_key_pair() for _ in range(count)]


def device_key_pairs(count: int, *, workers: int | None = None, chunk: int = 250) -> list[tuple[bytes, bytes]]:
    """`count` device key pairs, generated in chunks over all cores: RSA key generation is CPU-bound (~9 ms a
    key), and separate processes scale with the cores whatever the GIL does."""
    workers = workers or os.cpu_count() or 1
    if count <= chunk or workers == 1:
        return _key_pairs(count)
    sizes = [min(chunk, count - start) for start in range(0, count, chunk)]
    with ProcessPoolExecutor(max_workers=min(workers, len(sizes))) as pool:
        return [pair for batch in pool.map(_key_pairs, sizes) for pair in batch]
