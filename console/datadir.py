"""The embedded default's data directory (`var/`: SQLite file, generated secret key, embedded Redis, mail):
readable by the account that runs Cyan and nobody else."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create `path` (mode 0700), or take away group and other access from an existing one."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if missing (SQLite then opens it as a new database), or take away
    group and other access from an existing one."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    return path


def secret_key(data_dir: Path) -> str:
    """The generated SECRET_KEY kept in `data_dir`, so sessions survive restarts with no secret to invent."""
    key_file = data_dir / "secret_key"
    if not key_file.exists() or not key_file.read_text().strip():
        private_file(key_file).write_text(secrets.token_urlsafe(48))
    os.chmod(key_file, 0o600)
    return key_file.read_text().strip()
