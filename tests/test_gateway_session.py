"""The session logic with no socket under it (session.py is transport-free by design): a recording transport
stands where TCP would, and the test plays the device's side message by message."""

from __future__ import annotations

import asyncio

import pytest

from devices.gateway import coap
from devices.gateway.session import MAX_TO_DEVICE, Session


class Recorder:
    peer_ip = "127.0.0.1"

    def __init__(self):
        self.sent: list[coap.Message] = []
        self.closed = ""

    def send(self, message):
        self.sent.append(message)

    def close(self, reason):
        self.closed = reason


class Hub:
    max_messages_per_second = 50

    def hello(self, session):
        pass


def online_session() -> tuple[Session, Recorder]:
    transport = Recorder()
    session = Session(Hub(), transport, "0" * 24, "abcdef012345", 100, 0.0)
    session.state = "online"
    return session, transport


def test_an_argument_longer_than_device_os_takes_is_refused_before_anything_is_sent():
    async def run():
        session, transport = online_session()
        answer = await session.call("function", {"name": "led", "arg": "x" * (MAX_TO_DEVICE + 1)}, 1.0)
        return answer, transport.sent
    answer, sent = asyncio.run(run())
    assert answer == {"ok": False, "error": "an argument of 623 bytes (the device takes 622)"}
    assert sent == []


def test_an_error_code_in_the_devices_ack_is_the_answer():
    # Device OS answers an argument it cannot take with ACK 4.00 and no token, then may still run the function.
    async def run():
        session, transport = online_session()
        call = asyncio.ensure_future(session.call("function", {"name": "led", "arg": "on"}, 1.0))
        await asyncio.sleep(0)
        request = transport.sent[-1]
        session.received(coap.Message(coap.ACK, coap.BAD_REQUEST, request.message_id), 0.1)
        session.received(coap.Message(coap.NON, coap.CHANGED, 7, request.token, payload=(1).to_bytes(4, "big")), 0.2)
        return await call
    assert asyncio.run(run()) == {"ok": False, "error": "device answered 4.00"}


def test_an_event_too_big_for_the_device_is_not_sent():
    session, transport = online_session()
    session.send_event("cyan/big", "x" * (MAX_TO_DEVICE + 1))
    session.send_event("cyan/ok", "x" * MAX_TO_DEVICE)
    assert [m.path for m in transport.sent] == [["E", "cyan/ok"]]


def test_a_request_that_arrives_before_the_admit_waits_for_it():
    # The worker commits "online" and then notifies the gateway: a caller who saw the row online may be first.
    async def run():
        transport = Recorder()
        session = Session(Hub(), transport, "0" * 24, "abcdef012345", 100, 0.0)
        session.state = "pending"
        call = asyncio.ensure_future(session.call("ping", {}, 2.0))
        await asyncio.sleep(0.1)
        assert transport.sent == []  # nothing goes to a device that is not let in yet
        session.state = "online"
        await asyncio.sleep(0.05)
        session.received(coap.Message(coap.ACK, coap.EMPTY, transport.sent[-1].message_id), 0.2)
        return await call
    assert asyncio.run(run()) == {"ok": True}


def test_a_request_to_a_device_still_waiting_after_three_seconds_is_offline():
    async def run():
        session = Session(Hub(), Recorder(), "0" * 24, "abcdef012345", 100, 0.0)
        session.state = "pending"
        return await session.call("ping", {}, 3.5)
    assert asyncio.run(run()) == {"ok": False, "error": "offline"}


class DescribeHub(Hub):
    def __init__(self):
        self.described = []

    def describe(self, session, describe, system):
        self.described.append((describe, system))


@pytest.mark.parametrize("body", [b'{"f": 5, "v": {"temp": 9}}', b'{"f": ["led"], "v": ["temp"]}',
                                  b'{"f": ["led", 7], "v": {"temp": [9], "mode": {"x": 1}}}'])
def test_a_malformed_describe_is_bad_input_not_an_error_of_ours(body):
    """Device OS's describe is `{"f": [names], "v": {name: type number}}`; whatever else a device sends is
    dropped part by part, and the session carries on (it used to raise inside the gateway: "internal error")."""
    hub = DescribeHub()
    session = Session(hub, Recorder(), "0" * 24, "abcdef012345", 100, 0.0)
    session.state = "online"
    session.received(coap.Message(coap.CON, coap.POST, 9, b"\x01", options=[(coap.URI_PATH, b"d")],
                                  payload=body), 0.1)
    [(describe, _)] = hub.described
    assert all(isinstance(f, str) for f in describe.functions)
    assert set(describe.variables.values()) <= {"bool", "int32", "string", "double"}
    assert session.transport.closed == ""
