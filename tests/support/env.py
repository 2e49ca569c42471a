"""External tools the browser and npm-client tests need, and how a missing one is reported."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_EXTERNAL = os.environ.get("CYAN_REQUIRE_EXTERNAL") == "1"


def need(tool_ok: bool, reason: str) -> None:
    """Skip with a visible reason, unless CI says every external tool must be there (then fail)."""
    if tool_ok:
        return
    if REQUIRE_EXTERNAL:
        pytest.fail(f"{reason} (CYAN_REQUIRE_EXTERNAL=1: CI must install it)")
    pytest.skip(reason)


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None
