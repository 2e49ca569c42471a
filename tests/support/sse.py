"""A plain SSE reader for tests: opens a stream with http.client and reads frames as the server writes them."""

from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Frame:
    id: str | None
    event: str | None
    data: dict | None
    comment: str | None = None


class Stream:
    def __init__(self, base_url: str, path: str, token: str | None, headers: dict | None = None,
                 timeout: float = 10.0):
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        sent = {"Authorization": f"Bearer {token}"} if token else {}
        sent.update(headers or {})
        self.conn.request("GET", path, headers=sent)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.lines_seen: list[bytes] = []

    def json(self) -> dict:
        return json.loads(self.response.read())

    def readline(self, timeout: float) -> bytes:
        self.conn.sock.settimeout(timeout)
        line = self.response.readline()
        if not line:
            raise EOFError("the server closed the stream")
        self.lines_seen.append(line)
        return line

    def frame(self, timeout: float = 10.0) -> Frame:
        """The next frame (an event, or a comment block such as `:ok`); bare keepalive newlines are skipped."""
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        comment = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no frame in time")
            line = self.readline(left).rstrip(b"\r\n").decode()
            if not line:
                if fields or comment is not None:
                    data = json.loads(fields["data"]) if "data" in fields else None
                    return Frame(fields.get("id"), fields.get("event"), data, comment)
                continue
            if line.startswith(":"):
                comment = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value

    def event(self, timeout: float = 10.0) -> Frame:
        """The next event, skipping comments."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.frame(max(0.01, deadline - time.monotonic()))
            if f.event is not None:
                return f

    def close(self) -> None:
        self.conn.close()
