"""Particle's error shape: every refusal is JSON `{"error", "error_description"}`."""

from __future__ import annotations


def assert_json_error(r) -> dict:
    """The response is JSON with a non-empty `error` and `error_description`; returns the body."""
    assert r["Content-Type"].startswith("application/json"), (r.status_code, r.content[:200])
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("error_description"), str) and body["error_description"].strip(), body
    return body
