"""A webhook receiver for the benchmarks, on 127.0.0.1: answers every request 200 at once and records, for
each, when it arrived, its `X-Cyan-Event-Id` and the event's `published_at` (from Cyan's default form
payload). `GET /dump` returns the records as JSON and clears them.

    python bench/receiver.py <port>

Why a bare asyncio protocol and not aiohttp's server: the receiver shares the machine with what is measured.
aiohttp's server spent 0.30-0.35 ms of CPU per webhook request here (form parsing included); this one spends
about 0.06 ms, so the machine's cores go to Cyan. It reads HTTP/1.1 with Content-Length bodies and keep-alive,
which is what Cyan's client sends; anything else closes the connection.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from urllib.parse import unquote_plus

records: list[tuple[float, str, float]] = []
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def published(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def form_value(body: bytes, name: bytes) -> str:
    for pair in body.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == name:
            return unquote_plus(value.decode())
    return ""


class Receiver(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            method, path = (head[0].split(" ") + ["", ""])[:2]
            if method == "GET" and path == "/dump":
                out = json.dumps(records).encode()
                records.clear()
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                     + str(len(out)).encode() + b"\r\n\r\n" + out)
                continue
            if "transfer-encoding" in headers:  # not what Cyan sends: refuse rather than misread
                self.transport.close()
                return
            records.append((time.time(), headers.get("x-cyan-event-id", ""),
                            published(form_value(body, b"published_at"))))
            self.transport.write(OK)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", port, backlog=1024)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
