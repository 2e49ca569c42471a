"""A real SMTP server on 127.0.0.1 (aiosmtpd) that Django's SMTP backend delivers to, for tests of mail that
leaves through the Celery worker: the worker runs in the test process (tests/support/worker.py), so the
settings pointed at the receiver here reach it too."""

from __future__ import annotations

import re
import socket
import threading
import time
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

LINK_RE = re.compile(r"https?://\S+")


class Inbox:
    """What the receiver was sent, as parsed messages, in arrival order."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in m["X-Envelope-To"].split(", ")]

    def wait_for(self, address: str, timeout: float = 20.0) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no mail reached {address} within {timeout}s; got {len(self.messages)} others")


def body_text(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def only_link(message: EmailMessage) -> str:
    links = LINK_RE.findall(body_text(message))
    assert len(links) == 1, links
    return links[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_receiver(settings):
    """An SMTP server on a free 127.0.0.1 port, with Django's SMTP backend pointed at it for the test."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield inbox
    finally:
        controller.stop()
