"""The smaller holes a probe found (issue 11, item 9): tokens in access logs, cookie and transport settings,
weak passwords, formula injection in CSV exports, a world-readable data directory, a traceback for every
console 403, direction-override characters in names, and email links that ignored the app's port."""

from __future__ import annotations

import csv
import io
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from console.embedded_redis import stop_embedded_redis
from console.logfilters import REDACTED
from devices.models import ImportJob
from devices.services.jobs import import_job_run
from products.models import Product
from tests.support.api import Api

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def _settings_in_a_fresh_process(tmp_path: Path, **env) -> dict:
    """Read settings the way a freshly started process does, with `env` on top of a clean embedded default."""
    child_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PUBLIC_URL", "CYAN_PORT",
                                                                  "SECURE_COOKIES", "HSTS_SECONDS")}
    child_env.update(CYAN_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="console.settings", **env)
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "from console.embedded_redis import stop_embedded_redis; "
            "print(json.dumps({k: getattr(s, k, None) for k in ('PUBLIC_URL', 'SESSION_COOKIE_SECURE', "
            "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT')})); "
            "stop_embedded_redis(s.DATA_DIR)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_email_links_follow_the_port_the_app_runs_on(tmp_path):
    assert _settings_in_a_fresh_process(tmp_path, CYAN_PORT="8123")["PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert _settings_in_a_fresh_process(tmp_path)["PUBLIC_URL"] == "http://127.0.0.1:8000"
    assert _settings_in_a_fresh_process(tmp_path, PUBLIC_URL="https://cyan.example.com/")["PUBLIC_URL"] == \
        "https://cyan.example.com"


def test_cookies_are_secure_behind_https_and_hsts_is_a_setting(tmp_path):
    plain = _settings_in_a_fresh_process(tmp_path)
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["SECURE_HSTS_SECONDS"] == 0
    tls = _settings_in_a_fresh_process(tmp_path, PUBLIC_URL="https://cyan.example.com", HSTS_SECONDS="31536000")
    assert tls["SESSION_COOKIE_SECURE"] is True and tls["CSRF_COOKIE_SECURE"] is True
    assert tls["SECURE_HSTS_SECONDS"] == 31536000


def test_the_data_directory_is_private(tmp_path):
    _settings_in_a_fresh_process(tmp_path)
    data = tmp_path / "data"
    assert (data.stat().st_mode & 0o777) == 0o700
    assert ((data / "secret_key").stat().st_mode & 0o777) == 0o600
    assert ((data / "cyan.sqlite3").stat().st_mode & 0o777) == 0o600
    (data / "secret_key").chmod(0o644)  # an install from before: tightened at the next start
    data.chmod(0o755)
    _settings_in_a_fresh_process(tmp_path)
    assert (data.stat().st_mode & 0o777) == 0o700 and ((data / "secret_key").stat().st_mode & 0o777) == 0o600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uvicorns_access_log_never_shows_an_access_token(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CYAN_DATA_DIR=str(tmp_path / "data"))
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1",
                               "--port", str(port), "--lifespan", "off"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/v1/no-such-route?x=1&access_token=secret0123456789abc",
                                 timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.3)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
        stop_embedded_redis(tmp_path / "data")
    assert "/v1/no-such-route?x=1&access_token=" + REDACTED in output, output
    assert "secret0123456789abc" not in output


def test_django_log_lines_are_redacted_too(caplog):
    from console.logfilters import RedactTokens

    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s',
                               ("GET /v1/devices?access_token=abcdef123 HTTP/1.1", "200", "12"), None)
    RedactTokens().filter(record)
    assert "abcdef123" not in record.getMessage() and f"access_token={REDACTED}" in record.getMessage()


@pytest.mark.parametrize("password,why", [
    ("owner@example.com", "too similar"),
    ("owner.example", "too similar"),
    ("31415926535897", "entirely numeric"),
    ("password1", "too common"),
    ("short", "too short"),
])
def test_weak_passwords_are_refused(cast, password, why):
    r = cast.api("owner").put("/v1/user", {"password": password, "current_password": "correct-horse-battery"})
    assert r.status_code == 400, r.content
    assert why in r.json()["error_description"]


def test_a_customer_password_like_the_customers_email_is_refused(cast):
    r = cast.api("owner").post(f"/v1/products/{cast.product.pk}/customers",
                               {"email": "alice.wonder@example.com", "password": "alice.wonder@example.com"})
    assert r.status_code == 400 and "too similar" in r.json()["error_description"], r.content


@pytest.mark.parametrize("name", ["Tracker\u202egnp.exe", "Fleet\u2066x\u2069", "Rtl\u200fMark"])
def test_names_with_direction_controls_are_refused(cast, name):
    r = cast.api("owner").post(f"/v1/orgs/{cast.org.pk}/products", {"product": {"name": name, "platform_id": 13}})
    assert r.status_code == 400 and "text-direction" in r.json()["error_description"], r.content
    assert not Product.objects.filter(name=name).exists()


def test_csv_cells_that_start_like_a_formula_are_neutralised(cast, client):
    client.force_login(cast.developer)
    lines = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2", "@SUM(A1)", "plain"]
    upload = SimpleUploadedFile("order.txt", "\n".join(lines).encode(), content_type="text/plain")
    client.post(f"/products/{cast.product.slug}/devices/import/", {"file": upload})
    job = ImportJob.objects.get(product=cast.product)
    import_job_run(job.pk)
    report = client.get(f"/products/{cast.product.slug}/devices/import/{job.pk}/report.csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    values = [row[1] for row in rows[1:]]
    assert values == ["'=HYPERLINK(\"http://evil\")", "'+1+1", "'-2", "'@SUM(A1)", "plain"], values


def test_a_console_403_logs_one_line_and_no_traceback(cast, client, caplog):
    client.force_login(cast.viewer)
    with caplog.at_level(logging.INFO):
        r = client.post(f"/products/{cast.product.slug}/settings/", {"name": "Renamed"})
    assert r.status_code == 403 and b"You can" in r.content
    assert not [rec for rec in caplog.records if rec.exc_info], [rec.getMessage() for rec in caplog.records]
    assert any(rec.name == "console.access" and "403" in rec.getMessage() for rec in caplog.records)


def test_console_pages_carry_a_content_security_policy(client):
    r = client.get("/login/")
    policy = r["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert r["X-Frame-Options"] == "DENY" and r["X-Content-Type-Options"] == "nosniff"


def test_an_api_error_is_json_and_a_plain_api_caller_is_unaffected(cast):
    r = Api(cast.tokens["owner"]).get("/v1/user")
    assert r.status_code == 200 and r.json()["username"] == "owner@example.com"
