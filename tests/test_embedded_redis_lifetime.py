"""`make run` and `make test` start the embedded Redis (console/settings.py, on first import) and must stop it
again when they end, Ctrl-C included; a server that was already running is not theirs to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from console.embedded_redis import _alive, ensure_embedded_redis, socket_for, stop_embedded_redis

ROOT = Path(__file__).resolve().parents[1]
START = ("import sys, time; from pathlib import Path; from console.embedded_redis import ensure_embedded_redis as e; "
         "base = Path(sys.argv[1]); e(base); e(base / 'gw0'); print('ready', flush=True); ")


def _wrapper(data_dir: Path, script: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "CYAN_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "console.embedded_redis", "run", "--", sys.executable, "-c",
                             script, str(data_dir)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, **kwargs)


def test_the_servers_a_command_started_are_stopped_and_its_exit_code_kept(tmp_path):
    data = tmp_path / "d"
    proc = _wrapper(data, START + "sys.exit(3)")
    assert proc.communicate(timeout=60)[0].strip() == "ready"
    assert proc.returncode == 3
    assert not _alive(socket_for(data)) and not _alive(socket_for(data / "gw0"))


def test_a_server_that_ran_before_the_command_is_left_running(tmp_path):
    data = tmp_path / "d"
    ensure_embedded_redis(data)
    try:
        proc = _wrapper(data, START)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert _alive(socket_for(data))
        assert not _alive(socket_for(data / "gw0"))
    finally:
        stop_embedded_redis(data)


def test_ctrl_c_stops_the_command_and_then_its_servers(tmp_path):
    data = tmp_path / "d"
    # Its own session stands in for the terminal's foreground process group, which Ctrl-C signals as a whole.
    proc = _wrapper(data, START + "time.sleep(120)", start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert _alive(socket_for(data))
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        deadline = time.monotonic() + 5
        while _alive(socket_for(data / "gw0")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(socket_for(data)) and not _alive(socket_for(data / "gw0"))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        stop_embedded_redis(data)
        stop_embedded_redis(data / "gw0")


def test_the_makefile_wraps_run_and_test():
    makefile = (ROOT / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    test = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "console.embedded_redis run --" in run and "serve" in run
    assert "console.embedded_redis run --" in test and "pytest" in test


def test_another_commands_server_below_the_data_dir_is_not_stopped(tmp_path):
    """`make run` (data dir var/) ends while `make test` (var/test) runs: the test run's server stays up."""
    data = tmp_path / "d"
    other = data / "test"
    try:
        proc = _wrapper(data, START + f"e(Path({str(other)!r}))")
        proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert _alive(socket_for(other))
        assert not _alive(socket_for(data)) and not _alive(socket_for(data / "gw0"))
    finally:
        stop_embedded_redis(other)
