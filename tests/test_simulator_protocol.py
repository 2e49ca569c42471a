"""The simulator on the wire, against a minimal cloud written for these tests (tests/support/mini_cloud.py):
what a device says after the handshake, how it answers, its timers and its reconnects, as the fact sheet
says Device OS behaves. Each test runs its cloud and fleet on one event loop over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from contextlib import asynccontextmanager

import pytest

from devices.simulator import Fleet, coap
from devices.simulator.coap import ACK, CON, NON, Message
from tests.support.mini_cloud import MiniCloud
from tests.support.simulator import device_key, device_specs, pkcs1_der, server_key_file, server_keys

SERVER = server_keys()
KEY_FILE = server_key_file(SERVER.public_key())
SPECS = device_specs(4)


def run(scenario, timeout: float = 30):
    asyncio.run(asyncio.wait_for(scenario(), timeout))


@asynccontextmanager
async def world(count: int = 1, *, cloud: dict | None = None, **options):
    mini = MiniCloud(private_key=SERVER, **(cloud or {}))
    port = await mini.start()
    options.setdefault("reconnect_jitter", 0.05)
    fleet = Fleet(SPECS[:count], "127.0.0.1", port, server_key=KEY_FILE, record=True, **options)
    await fleet.start()
    try:
        yield mini, fleet
    finally:
        await fleet.stop()
        await mini.stop()


async def online(mini: MiniCloud, fleet: Fleet, index: int = 0):
    """The device's connection once the device is online and its connect-time `GET /t` has arrived."""
    device = fleet.devices[index]
    assert await fleet.wait_until(lambda: device.connected, 5), device.last_error
    connection = mini.for_device(device.device_id)[-1]
    await connection.wait_for(lambda m: m.path == ["t"])
    return device, connection


def request(code, path: list[str], token: bytes = b"\x07", query: bytes | None = None, mid: int = 900):
    options = [(coap.URI_PATH, part.encode()) for part in path]
    if query is not None:
        options.append((coap.URI_QUERY, query))
    return Message(CON, code, mid, token, options)


def test_it_says_hello_then_the_connect_time_sequence():
    async def scenario():
        async with world(product_id=4242, firmware_version=7, claim_code="CLAIM123") as (mini, fleet):
            device, connection = await online(mini, fleet)
            messages = connection.messages
            assert messages[0].type == NON and messages[0].path == ["h"] and messages[0].token == b""
            assert messages[0].payload == struct.pack(">HHBBH", 4242, 7, 0, 0x36, 6)
            # Message ids start at the salt's first two bytes, little-endian, plus one, then count up.
            salt = struct.unpack_from("<H", connection.session, 32)[0]
            assert [m.message_id for m in messages] == [(salt + 1 + i) & 0xFFFF for i in range(len(messages))]
            assert [("/".join(m.path), m.payload) for m in messages[1:7]] == [
                ("E/spark/device/claim/code", b"CLAIM123"),
                ("E/spark/hardware/max_binary", b"102400"),
                ("E/spark/hardware/ota_chunk_size", b"512"),
                ("E/spark/device/last_reset", b"power_down"),
                ("E/particle/device/updates/enabled", b"true"),
                ("E/particle/device/updates/forced", b"false"),
            ]
            assert all(m.type == NON and len(m.option_values(coap.URI_PATH)) == 2 for m in messages[1:7])  # one name option
            describe = messages[7]
            assert (describe.type, describe.code, describe.path, describe.queries) == (CON, coap.POST, ["d"], [b"\x02"])
            assert describe.token == b""
            assert coap.encode(describe)[4:8] == bytes.fromhex("b164" "4102")     # Uri-Path d, Uri-Query 02
            assert json.loads(describe.payload) == {"f": ["led", "echo"],
                                                    "v": {"temperature": 9, "uptime": 2, "name": 4}}
            assert [(m.path, m.queries) for m in messages[8:10]] == [(["e", "spark"], [b"u"]),
                                                                     (["e", "particle"], [b"u"])]
            time_request = messages[10]
            assert (time_request.type, time_request.code, len(time_request.token)) == (CON, coap.GET, 1)
            assert await fleet.wait_until(lambda: device.server_time is not None, 2)
            assert abs(device.server_time - time.time()) < 5
            assert device.hello_at is not None and device.handshake_time < 2 and device.connects == 1
    run(scenario)


def test_without_product_firmware_the_hello_says_the_platform():
    async def scenario():
        async with world() as (mini, fleet):
            _, connection = await online(mini, fleet)
            assert connection.messages[0].payload == struct.pack(">HHBBH", 6, 0xFFFF, 0, 0x36, 6)
    run(scenario)


def test_a_confirmable_server_hello_is_acked_with_its_own_id():
    async def scenario():
        async with world(cloud=dict(hello_con=True)) as (mini, fleet):
            _, connection = await online(mini, fleet)
            acks = [m for m in connection.messages if m.type == ACK]
            assert [(m.code, m.message_id, m.token) for m in acks] == [(coap.EMPTY, 2, b"")]
            assert connection.messages[1] is acks[0]            # before the connect-time events
    run(scenario)


def test_it_gives_up_without_a_server_hello_and_retries_after_a_backoff():
    async def scenario():
        async with world(cloud=dict(answer_hello=False), hello_timeout=0.3, backoff_unit=0.2) as (mini, fleet):
            device = fleet.devices[0]
            assert await fleet.wait_until(lambda: mini.handshakes >= 2, 5)
            first, second = mini.connections[:2]
            await first.wait_closed(1)
            # Only the Hello went out (no events before the server's Hello), then the device dropped it
            # after its Hello wait and came back after a backoff step (0.2 s ±20 %).
            assert [m.path for m in first.messages] == [["h"]]
            gap = second.connected_at - first.arrived_at[0]
            assert 0.3 + 0.16 - 0.05 <= gap <= 0.3 + 0.24 + 0.6   # upper bound: room for a busy machine
            assert not device.connected and "Hello" in device.last_error and device.failures >= 1
    run(scenario)


def test_it_refuses_a_server_whose_signature_does_not_verify():
    async def scenario():
        async with world(cloud=dict(bad_signature=True), backoff_unit=5) as (mini, fleet):
            device = fleet.devices[0]
            assert await fleet.wait_until(lambda: device.failures == 1, 5)
            await mini.connections[0].wait_closed(2)
            assert mini.connections[0].messages == []            # not even a Hello
            assert "signature" in device.last_error and device.state == "backoff"
    run(scenario)


def test_it_answers_variables_with_an_ack_then_a_non_with_the_token():
    async def scenario():
        async with world() as (mini, fleet):
            device, connection = await online(mini, fleet)
            answers = {}
            for mid, (name, token) in enumerate((("temperature", b"\x11"), ("uptime", b"\x12"),
                                                 ("name", b"\x13"), ("pressure", b"\x14")), start=500):
                connection.send(request(coap.GET, ["v", name], token, mid=mid))
                ack = await connection.wait_for(lambda m, mid=mid: m.type == ACK and m.message_id == mid)
                assert (ack.code, ack.token, ack.payload) == (coap.EMPTY, b"", b"")
                answers[name] = await connection.wait_for(
                    lambda m, t=token: m.type == NON and m.token == t and m.code >= 0x40)  # a response, see below
            temperature = answers["temperature"]
            assert temperature.code == coap.CONTENT and len(temperature.payload) == 8
            assert 17 < struct.unpack("<d", temperature.payload)[0] < 25          # little-endian double
            assert answers["uptime"].code == coap.CONTENT
            assert 0 <= struct.unpack(">i", answers["uptime"].payload)[0] < 60     # big-endian int
            assert answers["name"].payload == f"sim-{device.device_id[-6:]}".encode()
            assert (answers["pressure"].code, answers["pressure"].payload) == (coap.NOT_FOUND, b"")
            # The answers carry the device's own message ids, which keep counting up.
            ids = [answers[n].message_id for n in ("temperature", "uptime", "name", "pressure")]
            assert ids == sorted(ids) and len(set(ids)) == 4
    run(scenario)


def test_it_answers_functions_and_never_an_unknown_one():
    async def scenario():
        async with world() as (mini, fleet):
            device, connection = await online(mini, fleet)
            results = []
            calls = [("led", b"on"), ("led", b"off"), ("led", b"blink"), ("echo", b"hello world"), ("echo", b"")]
            for token, (name, argument) in enumerate(calls, start=0x20):
                connection.send(request(coap.POST, ["f", name], bytes([token]), argument, mid=600 + token))
                answer = await connection.wait_for(
                    lambda m, t=token: m.type == NON and m.token == bytes([t]) and m.code >= 0x40)
                assert answer.code == coap.CHANGED
                results.append(struct.unpack(">i", answer.payload)[0])
            assert results == [1, 0, -1, 11, 0]
            connection.send(request(coap.POST, ["f", "reboot"], b"\x30", b"now", mid=700))
            await connection.wait_for(lambda m: m.type == ACK and m.message_id == 700)
            await asyncio.sleep(0.4)
            assert not [m for m in connection.messages if m.token == b"\x30" and m.code >= 0x40]
            assert device.connected and not connection.closed and len(mini.connections) == 1
    run(scenario)


def test_it_answers_describe_with_an_ack_then_a_separate_con():
    async def scenario():
        async with world() as (mini, fleet):
            device, connection = await online(mini, fleet)
            replies = {}
            for token, query in ((b"\x41", None), (b"\x42", b"\x02"), (b"\x43", b"\x01"), (b"\x44", b"\x04")):
                connection.send(request(coap.GET, ["d"], token, query, mid=800 + token[0]))
                await connection.wait_for(lambda m, t=token: m.type == ACK and m.message_id == 800 + t[0])
                # A response code (class 2-5), not one of the device's own requests: those carry tokens from a
                # counter that starts anywhere, so one of them can hold 0x41-0x44 as well.
                replies[token] = await connection.wait_for(
                    lambda m, t=token: m.type == CON and m.token == t and m.code >= 0x40)
            assert all(reply.code == coap.CONTENT for reply in replies.values())
            assert json.loads(replies[b"\x41"].payload) == {
                "p": 6, "m": [], "f": ["led", "echo"], "v": {"temperature": 9, "uptime": 2, "name": 4}}
            assert set(json.loads(replies[b"\x42"].payload)) == {"f", "v"}
            assert json.loads(replies[b"\x43"].payload) == {"p": 6, "m": []}
            vitals = replies[b"\x44"].payload
            assert vitals[:7] == b"\x00\x04\x00" + struct.pack("<HH", 2, 4) and (len(vitals) - 7) % 6 == 0
    run(scenario)


def test_signal_and_server_pings_are_acked_with_the_devices_own_next_id():
    async def scenario():
        async with world() as (mini, fleet):
            device, connection = await online(mini, fleet)
            last_id = connection.messages[-1].message_id
            connection.send(request(coap.PUT, ["s"], b"\x51", b"\x01", mid=3))
            ack = await connection.wait_for(lambda m: m.type == ACK and m.token == b"\x51")
            assert (ack.code, ack.message_id) == (coap.CHANGED, (last_id + 1) & 0xFFFF)
            assert device.signaling
            connection.send(request(coap.PUT, ["s"], b"\x52", b"\x00", mid=4))
            await connection.wait_for(lambda m: m.type == ACK and m.token == b"\x52")
            assert not device.signaling
            connection.send(Message(CON, coap.EMPTY, 5))
            pong = await connection.wait_for(lambda m: m.type == ACK and m.code == coap.EMPTY
                                             and m.message_id == (last_id + 3) & 0xFFFF)
            assert pong.token == b""
    run(scenario)


@pytest.mark.parametrize("path, token", [(["v", "uptime"], b""), (["f", "led"], b"\x01\x02"),
                                         (["d"], b""), (["s"], b"\x01\x02\x03")])
def test_a_request_without_a_one_byte_token_drops_the_connection(path, token):
    async def scenario():
        async with world() as (mini, fleet):
            device, connection = await online(mini, fleet)
            connection.send(request(coap.GET if path[0] in "vd" else coap.POST, path, token, b"\x01"))
            await connection.wait_closed(2)
            assert "token" in device.last_error
            assert not [m for m in connection.messages if m.type == ACK]
            await online(mini, fleet)              # and it comes back at once
            assert len(mini.for_device(device.device_id)) == 2
    run(scenario)


def test_any_2_05_from_the_server_is_taken_as_the_time():
    async def scenario():
        async with world() as (mini, fleet):
            device, connection = await online(mini, fleet)
            await fleet.wait_until(lambda: device.server_time is not None, 2)
            connection.send(Message(NON, coap.CONTENT, 77, b"\x01", payload=struct.pack(">I", 1234567890)))
            assert await fleet.wait_until(lambda: device.server_time == 1234567890, 2)
    run(scenario)


def test_events_to_the_device_are_not_acked_and_a_reset_reboots_it():
    async def scenario():
        async with world() as (mini, fleet):
            device, connection = await online(mini, fleet)
            connection.send(Message(CON, coap.POST, 40, b"", [(coap.URI_PATH, b"E"), (coap.URI_PATH, b"hello/world")],
                                    b"data"))
            connection.send(Message(NON, coap.POST, 41, b"", [(coap.URI_PATH, b"e"), (coap.URI_PATH, b"a"),
                                                              (coap.URI_PATH, b"b")]))
            assert await fleet.wait_until(lambda: len(device.events) == 2, 2)
            assert device.events == [("hello/world", b"data"), ("a/b", b"")]
            await asyncio.sleep(0.2)
            assert not [m for m in connection.messages if m.type == ACK and m.message_id in (40, 41)]
            connection.send(Message(NON, coap.POST, 42, b"", [(coap.URI_PATH, b"E"),
                                                              (coap.URI_PATH, b"spark/device/reset")], b"reboot"))
            await connection.wait_closed(2)
            assert await fleet.wait_until(lambda: len(mini.for_device(device.device_id)) == 2, 3)
            again = mini.for_device(device.device_id)[1]
            reset = await again.wait_for(lambda m: m.path == ["E", "spark/device/last_reset"])
            assert reset.payload == b"user"
    run(scenario)


def test_it_pings_after_receiving_nothing_and_its_own_sends_do_not_count():
    async def scenario():
        async with world(ping_interval=0.4, ping_timeout=0.4, publish_every=0.1) as (mini, fleet):
            device, connection = await online(mini, fleet)
            # The cloud talks to the device every 0.1 s for a second: no ping is due.
            for i in range(10):
                connection.send(Message(NON, coap.POST, 100 + i, b"", [(coap.URI_PATH, b"E"), (coap.URI_PATH, b"x")]))
                await asyncio.sleep(0.1)
            assert device.pings_sent == 0
            # Then silence; the device's own publishes go on, but 0.4 s after the last thing it received it pings,
            # the cloud answers, and it stays connected.
            quiet_from = time.monotonic()
            ping = await connection.wait_for(lambda m: m.type == CON and m.code == coap.EMPTY, 2)
            index = connection.messages.index(ping)
            assert 0.2 <= connection.arrived_at[index] - quiet_from <= 1.2
            assert [m for m in connection.messages if m.path == ["E", "temperature"]]
            await asyncio.sleep(1.0)
            assert device.connected and device.pings_sent >= 2 and len(mini.connections) == 1
    run(scenario)


def test_it_reconnects_when_a_ping_goes_unanswered():
    async def scenario():
        async with world(cloud=dict(answer_pings=False), ping_interval=0.3, ping_timeout=0.3) as (mini, fleet):
            device, connection = await online(mini, fleet)
            ping = await connection.wait_for(lambda m: m.code == coap.EMPTY and m.type == CON, 2)
            sent = connection.arrived_at[connection.messages.index(ping)]
            await connection.wait_closed(2)
            closed = time.monotonic()
            assert 0.2 <= closed - sent <= 1.2
            assert "ping" in device.last_error
            assert await fleet.wait_until(lambda: len(mini.connections) == 2, 2)
            assert mini.connections[1].connected_at - closed < 1.0    # a lost session reconnects at once
    run(scenario)


def test_it_backs_off_as_device_os_does_after_failed_attempts():
    fleet = Fleet([], server_key=KEY_FILE)
    delays = [fleet.backoff_delay(n) for n in range(1, 46)]
    steps = [1] * 5 + [2] * 5 + [4] * 5 + [8] * 5 + [16] * 5 + [32] * 5 + [64] * 5 + [128] * 10
    assert all(0.8 * step <= delay <= 1.2 * step for delay, step in zip(delays, steps))
    assert len({round(d, 6) for d in delays[:5]}) == 5          # jittered, not in lock step

    async def scenario():
        # Nothing listens on the port: every attempt fails, and the device waits 0.1 s five times, then 0.2 s.
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        refused = Fleet(SPECS[:1], "127.0.0.1", port, server_key=KEY_FILE, backoff_unit=0.1, record=True)
        await refused.start()
        device = refused.devices[0]
        # An attempt is recorded when it starts and counted as a failure when it ends: wait for both.
        assert await refused.wait_until(lambda: len(device.attempts) >= 8 and device.failures >= 8, 10)
        await refused.stop()
        gaps = [b - a for a, b in zip(device.attempts, device.attempts[1:])][:7]
        # A busy machine only makes the waits longer, so the lower bounds are the test. One late timer under
        # CI load made a 0.1 s step take 0.44 s, so the 0.1 s steps are told from the 0.2 s ones by their
        # median, not by every one of them.
        assert all(0.08 <= gap for gap in gaps[:5]), gaps
        assert sorted(gaps[:5])[2] < 0.16, gaps
        assert all(0.16 <= gap for gap in gaps[5:]), gaps
        assert device.failures >= 8 and device.last_error.startswith("connect: ")
    run(scenario)


def test_an_oversized_or_malformed_message_from_the_server_drops_the_connection():
    async def scenario():
        async with world(2) as (mini, fleet):
            first, c1 = await online(mini, fleet, 0)
            second, c2 = await online(mini, fleet, 1)
            c1.send(Message(NON, coap.POST, 1, b"", [(coap.URI_PATH, b"E"), (coap.URI_PATH, b"big")], b"x" * 900))
            c2.send_plain(b"\x80\x01\x00\x01")          # CoAP version 2
            await c1.wait_closed(2)
            await c2.wait_closed(2)
            assert "receive buffer" in first.last_error and "version" in second.last_error
    run(scenario)


def test_hooks_send_a_truncated_handshake_or_a_wrong_nonce():
    async def scenario():
        async with world(2, handshake_timeout=0.5, backoff_unit=10) as (mini, fleet):
            cut, wrong = fleet.devices
            assert await fleet.wait_until(lambda: len(mini.connections) == 2, 2)
            await fleet.wait_until(lambda: cut.connected and wrong.connected, 5)
            cut.on_nonce = lambda device, nonce: device.handshake_reply(nonce)[:100]
            wrong.on_nonce = lambda device, nonce: device.handshake_reply(bytes(40))
            cut.disconnect("test")
            wrong.disconnect("test")
            assert await fleet.wait_until(lambda: len(mini.connections) == 4, 3)
            for connection in mini.connections[2:]:
                await connection.wait_closed(2)
            # The wrong nonce is caught at once; the cut-short answer leaves the cloud waiting until the device
            # gives up after its handshake timeout.
            assert sorted(c.error for c in mini.connections[2:]) == ["IncompleteReadError", "ValueError: wrong nonce"]
            assert "session key" in cut.last_error
    run(scenario)


def test_the_cloud_sees_a_mismatched_key_and_the_device_a_closed_socket():
    async def scenario():
        other = pkcs1_der(device_key())
        from devices.simulator.channel import device_public_der, load_device_key
        keys = {SPECS[0].device_id: device_public_der(load_device_key(other))}
        async with world(cloud=dict(device_keys=keys), backoff_unit=10) as (mini, fleet):
            assert await fleet.wait_until(lambda: fleet.devices[0].failures == 1, 3)
            assert mini.connections[0].error == "ValueError: key mismatch"
            assert fleet.devices[0].state == "backoff"
    run(scenario)


def test_churn_drops_and_reconnects_devices_and_stop_closes_everything():
    async def scenario():
        async with world(4, churn=3000) as (mini, fleet):        # half the online devices each second
            assert await fleet.wait_connected(timeout=5)
            assert await fleet.wait_until(lambda: fleet.churned >= 3, 4)
            assert await fleet.wait_connected(timeout=5)
            assert mini.handshakes >= 7
            await fleet.stop()
            for connection in mini.connections:
                await connection.wait_closed(2)
            assert all(device.state == "stopped" and device.transport is None for device in fleet.devices)
    run(scenario)


def test_a_paused_device_goes_silent_without_closing():
    async def scenario():
        async with world(ping_interval=0.3, ping_timeout=0.3) as (mini, fleet):
            device, connection = await online(mini, fleet)
            device.paused = True
            count = len(connection.messages)
            connection.send(request(coap.GET, ["v", "uptime"], b"\x09"))
            await asyncio.sleep(1.2)             # four ping intervals: no ping, no answer, no close
            assert len(connection.messages) == count and not connection.closed
            assert device.connected and device.pings_sent == 0
            device.paused = False
            await connection.wait_for(lambda m: m.type == CON and m.code == coap.EMPTY, 2)
    run(scenario)


def test_a_device_told_not_to_reconnect_stays_down_even_mid_handshake():
    async def scenario():
        async with world(cloud=dict(answer_hello=False), hello_timeout=5) as (mini, fleet):
            device = fleet.devices[0]
            assert await fleet.wait_until(lambda: device.state == "hello", 3)
            device.disconnect("test", reconnect=False)
            assert await fleet.wait_until(lambda: device.state == "stopped", 2)
            await asyncio.sleep(0.3)
            assert len(mini.connections) == 1 and device.failures == 1
    run(scenario)
