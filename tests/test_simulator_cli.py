"""`manage.py simulate_fleet` and `python -m devices.simulator`: a fleet from a secrets file, its progress
line, `--processes`, and a clean stop on SIGTERM — against the tests' minimal cloud on a background loop."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.support.mini_cloud import MiniCloud
from tests.support.simulator import device_key, device_specs, server_key_file, server_keys, write_secrets

ROOT = Path(__file__).resolve().parent.parent
SERVER = server_keys()


@contextmanager
def cloud_in_thread(**options):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    cloud = MiniCloud(private_key=SERVER, **options)
    asyncio.run_coroutine_threadsafe(cloud.start(), loop).result(5)
    try:
        yield cloud
    finally:
        asyncio.run_coroutine_threadsafe(cloud.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def hellos(cloud: MiniCloud) -> dict[str, bytes]:
    return {c.device_id: c.hello for c in list(cloud.connections) if c.hello is not None}


@pytest.fixture(scope="module")
def shared_secrets(tmp_path_factory):
    """Five devices sharing one key, the file pointing at a port nothing listens on (tests pass --port)."""
    shared = device_key()
    specs = device_specs(5, platform_id=6, key=shared)
    path = tmp_path_factory.mktemp("fleet") / "secrets.jsonl"
    write_secrets(path, server_key=server_key_file(SERVER.public_key()), devices=specs, port=1, shared_key=shared)
    return path, specs


def test_simulate_fleet_runs_the_file_for_a_while_and_reports(shared_secrets):
    path, specs = shared_secrets
    out = StringIO()
    with cloud_in_thread() as cloud:
        call_command("simulate_fleet", secrets=str(path), count=3, product_id=4321, firmware_version=9,
                     port=cloud.port, duration=2.5, ramp=0, stdout=out)
        said = hellos(cloud)
        assert sorted(said) == sorted(spec.device_id for spec in specs[:3])
        assert set(said.values()) == {struct.pack(">HHBBH", 4321, 9, 0, 0x36, 6)}
        assert all(connection.closed for connection in cloud.connections)
    summary = out.getvalue().strip().splitlines()[-1]
    assert summary.startswith("done after ") and "connected 3 · handshaking 0 · backoff 0 · handshakes 3 · " \
                                                  "failures 0" in summary, summary


def test_processes_split_the_fleet_and_add_up_their_counters(shared_secrets):
    path, specs = shared_secrets
    out = StringIO()
    with cloud_in_thread() as cloud:
        call_command("simulate_fleet", secrets=str(path), processes=2, port=cloud.port, duration=3, stdout=out)
        assert sorted(hellos(cloud)) == sorted(spec.device_id for spec in specs)
        assert len({c.writer.get_extra_info("peername")[1] for c in cloud.connections}) == 5
    summary = out.getvalue().strip().splitlines()[-1]
    assert "connected 5 · " in summary and "handshakes 5 · failures 0" in summary, summary


def test_sigterm_stops_the_fleet_cleanly(shared_secrets):
    path, specs = shared_secrets
    with cloud_in_thread() as cloud:
        child = subprocess.Popen([sys.executable, "-m", "devices.simulator", "--secrets", str(path),
                                  "--port", str(cloud.port), "--count", "2"], cwd=ROOT, stdout=subprocess.PIPE,
                                 text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 10
        while len(hellos(cloud)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(hellos(cloud)) == 2
        child.send_signal(signal.SIGTERM)
        output, _ = child.communicate(timeout=15)
        assert child.returncode == 0
        deadline = time.monotonic() + 5
        while not all(c.closed for c in cloud.connections) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(c.closed for c in cloud.connections)
    assert "done after" in output and "connected 2 · " in output, output


def test_it_says_what_is_wrong_with_the_secrets_file(tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "secrets.jsonl"
    path.write_text("not json\n")
    with pytest.raises(CommandError, match="not JSON"):
        call_command("simulate_fleet", secrets=str(path), duration=1, stdout=StringIO())


def test_running_fleet_drives_a_fleet_from_synchronous_code():
    from tests.support.simulator import running_fleet

    specs = device_specs(2)
    with cloud_in_thread() as cloud:
        with running_fleet(specs, "127.0.0.1", cloud.port, server_key=server_key_file(SERVER.public_key()),
                           record=True) as sim:
            assert sim.wait_connected(timeout=10)
            sim.call(lambda fleet: fleet.devices[0].publish("sim/test", "42"))
            deadline = time.monotonic() + 5
            first = None
            while first is None and time.monotonic() < deadline:
                connection = next(c for c in cloud.connections if c.device_id == specs[0].device_id)
                first = next((m for m in list(connection.messages) if m.path == ["E", "sim/test"]), None)
                time.sleep(0.02)
            assert first is not None and first.payload == b"42"
            assert sim.call(lambda fleet: fleet.snapshot()["connected"]) == 2
        assert all(device.state == "stopped" for device in sim.devices)
        deadline = time.monotonic() + 5
        while not all(c.closed for c in cloud.connections) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(c.closed for c in cloud.connections)
