"""A minimal cloud side of the Gen 2 protocol, written for the simulator's own tests and its memory benchmark.

It is deliberately separate from the gateway (devices/gateway/) and from the simulator's channel: its own
handshake and IV bookkeeping, built from the fact sheet, so the simulator is checked against a second reading
of the protocol. It uses the simulator's CoAP codec, which tests/test_simulator.py checks byte by byte against
RFC 7252. Each connection records what arrived; a test sends to a device with `conn.send(...)`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import struct
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devices.simulator import coap
from devices.simulator.coap import ACK, CON, NON, Message


class Connection:
    """One device's connection to the mini cloud."""

    def __init__(self, cloud: "MiniCloud", reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.cloud = cloud
        self.reader = reader
        self.writer = writer
        self.device_id: str | None = None
        self.hello: bytes | None = None
        self.messages: list[Message] = []
        self.arrived = asyncio.Condition()
        self.arrived_at: list[float] = []
        self.closed = False
        self.error: str | None = None
        self.key = self.send_iv = self.receive_iv = None
        self.session: bytes | None = None
        self.next_id = 1
        self.connected_at = time.monotonic()

    # the channel, the cloud's way round: each direction's next IV is the first block of what it carried
    def _seal(self, plaintext: bytes) -> bytes:
        pad = 16 - len(plaintext) % 16
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.send_iv)).encryptor()
        ciphertext = enc.update(plaintext + bytes([pad]) * pad) + enc.finalize()
        self.send_iv = ciphertext[-16:] if self.cloud.last_block_iv else ciphertext[:16]
        return len(ciphertext).to_bytes(2, "big") + ciphertext

    def _open(self, ciphertext: bytes) -> bytes:
        dec = Cipher(algorithms.AES(self.key), modes.CBC(self.receive_iv)).decryptor()
        plaintext = dec.update(ciphertext) + dec.finalize()
        self.receive_iv = ciphertext[:16]
        return plaintext[:-plaintext[-1]]

    def send(self, message: Message) -> None:
        self.send_plain(coap.encode(message))

    def send_plain(self, plaintext: bytes) -> None:
        self.writer.write(self._seal(plaintext))

    def message_id(self) -> int:
        self.next_id = (self.next_id + 1) & 0xFFFF
        return self.next_id

    async def wait_for(self, predicate, timeout: float = 5.0) -> Message:
        """The first message (already arrived or still to come) that satisfies `predicate`."""
        async def find():
            async with self.arrived:
                while True:
                    for message in self.messages:
                        if predicate(message):
                            return message
                    if self.closed:
                        raise ConnectionError(f"closed before a matching message ({self.error})")
                    await self.arrived.wait()
        return await asyncio.wait_for(find(), timeout)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        async def closed():
            async with self.arrived:
                await self.arrived.wait_for(lambda: self.closed)
        await asyncio.wait_for(closed(), timeout)

    def close(self) -> None:
        self.writer.close()

    async def serve(self) -> None:
        cloud = self.cloud
        try:
            nonce = os.urandom(40)
            self.writer.write(nonce)
            answer = await self.reader.readexactly(256)
            plain = cloud.private_key.decrypt(answer, padding.PKCS1v15())
            if plain[:40] != nonce:
                raise ValueError("wrong nonce")
            self.device_id = plain[40:52].hex()
            device_key = serialization.load_der_public_key(plain[52:214])
            expected = cloud.device_keys.get(self.device_id)
            if expected is not None and expected != plain[52:214]:
                raise ValueError("key mismatch")
            session = os.urandom(40)
            encrypted = device_key.encrypt(session, padding.PKCS1v15())
            digest = hmac.new(session, encrypted, hashlib.sha1).digest()
            signature = cloud.private_key.sign(digest, padding.PKCS1v15(), utils.NoDigestInfo())
            if cloud.bad_signature:
                signature = bytes([signature[0] ^ 1]) + signature[1:]
            self.writer.write(encrypted + signature)
            self.session = session
            self.key, self.send_iv, self.receive_iv = session[:16], session[16:32], session[16:32]
            cloud.handshakes += 1
            while True:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
                message = coap.decode(self._open(await self.reader.readexactly(length)))
                self._answer(message)
                async with self.arrived:
                    self.messages.append(message)
                    self.arrived_at.append(time.monotonic())
                    self.arrived.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.error = f"{exc.__class__.__name__}"
        except Exception as exc:   # what went wrong is for the test to read
            self.error = f"{exc.__class__.__name__}: {exc}"
        finally:
            self.writer.close()
            async with self.arrived:
                self.closed = True
                self.arrived.notify_all()

    def _answer(self, message: Message) -> None:
        cloud = self.cloud
        path = message.path
        if message.type == NON and path[:1] == ["h"]:
            self.hello = message.payload
            if cloud.answer_hello:
                confirmable = cloud.hello_con
                self.send(Message(CON if confirmable else NON, coap.POST, self.message_id(),
                                  b"\x01" if confirmable else b"", [(coap.URI_PATH, b"h")], b"\x00" * 8))
        elif message.type == CON:
            if not cloud.answer_pings and message.code == coap.EMPTY:
                return
            if path[:1] == ["t"]:
                self.send(Message(ACK, coap.CONTENT, message.message_id, message.token,
                                  payload=struct.pack(">I", int(time.time()))))
            else:
                self.send(Message(ACK, coap.EMPTY, message.message_id))


class MiniCloud:
    """An asyncio TCP server on 127.0.0.1 (a free port) that runs Connection.serve for each client."""

    def __init__(self, *, private_key: rsa.RSAPrivateKey, device_keys: dict[str, bytes] | None = None,
                 answer_hello: bool = True, answer_pings: bool = True, bad_signature: bool = False,
                 last_block_iv: bool = False, hello_con: bool = False, keep: bool = True):
        self.private_key = private_key
        self.device_keys = device_keys or {}
        self.answer_hello = answer_hello
        self.answer_pings = answer_pings
        self.bad_signature = bad_signature
        self.last_block_iv = last_block_iv
        self.hello_con = hello_con
        self.keep = keep
        self.connections: list[Connection] = []
        self.handshakes = 0
        self.accepted = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _client(self, reader, writer) -> None:
        connection = Connection(self, reader, writer)
        self.accepted += 1
        if self.keep:
            self.connections.append(connection)
        await connection.serve()

    async def stop(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()

    def for_device(self, device_id: str) -> list[Connection]:
        return [c for c in self.connections if c.device_id == device_id]
