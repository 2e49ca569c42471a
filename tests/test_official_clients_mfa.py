"""MFA through the official, unmodified clients against a live server: particle-api-js 12.0.3 (`enableMfa`,
`confirmMfa`, `login` → 403 mfa_required → `sendOtp`, `disableMfa`) and particle-cli 3.43.1 (`particle login`
with `--otp`, and with the code typed at its prompt)."""

from __future__ import annotations

import pytest

from console.models import AccessToken, UserMfa
from tests.factories import PASSWORD, UserFactory
from tests.support.clients import TOKEN_RE, api_login, apijs, failed, http, ok, show, stored
from tests.support.mfa import enrol, steps, wrong_code

pytestmark = [pytest.mark.clients, pytest.mark.django_db(transaction=True)]

MFA_REQUIRED = "Multiple factor authentication required"


def test_apijs_enrols_then_logs_in_with_send_otp(base_url):
    UserFactory(email="ada@example.com")
    token = api_login(base_url, "ada@example.com")

    begun = ok(apijs(base_url, "enableMfa", {"auth": token}))
    assert sorted(begun) == ["mfa_token", "qr_url", "secret"] and begun["qr_url"].startswith("data:image/svg+xml")
    # Codes are computed just before each use, so a step boundary in between cannot age them out of the window.
    confirmed = ok(apijs(base_url, "confirmMfa", {"mfaToken": begun["mfa_token"],
                                                  "otp": steps(begun["secret"]).current, "auth": token}))
    assert confirmed["enrolled"] is True and len(confirmed["tokens"]) == 10
    assert ok(apijs(base_url, "getUserInfo", auth=token))["mfa"] == {"enabled": True}

    # login: a 403 that api-js rejects with the parsed body, mfa_token included, and no token issued.
    before = AccessToken.objects.count()
    refused = failed(apijs(base_url, "login", {"username": "ada@example.com", "password": PASSWORD}), 403)
    assert refused["error"] == "mfa_required" and refused["error_description"] == MFA_REQUIRED
    assert TOKEN_RE.fullmatch(refused["mfa_token"])
    assert AccessToken.objects.count() == before

    wrong = failed(apijs(base_url, "sendOtp", {"mfaToken": refused["mfa_token"], "otp": wrong_code(begun["secret"])}),
                   400)
    assert wrong == {"error": "invalid_grant", "error_description": "The one-time password is invalid"}
    code = steps(begun["secret"]).next
    body = ok(apijs(base_url, "sendOtp", {"mfaToken": refused["mfa_token"], "otp": code}))
    assert body["token_type"] == "bearer" and body["expires_in"] == 7776000 and body["refresh_token"]
    row = stored(body["access_token"])
    assert row.user.email == "ada@example.com" and row.client_label == "particle-api"
    me = ok(apijs(base_url, "getUserInfo", auth=body["access_token"]))
    assert me["username"] == "ada@example.com" and me["mfa"] == {"enabled": True}

    # The same code again, on a fresh sign-in: refused.
    again = failed(apijs(base_url, "login", {"username": "ada@example.com", "password": PASSWORD}), 403)
    assert failed(apijs(base_url, "sendOtp", {"mfaToken": again["mfa_token"], "otp": code}),
                  400)["error"] == "invalid_grant"
    # A recovery code instead.
    body = ok(apijs(base_url, "sendOtp", {"mfaToken": again["mfa_token"], "otp": confirmed["tokens"][0]}))
    assert http(base_url, "GET", "/v1/user", body["access_token"])[0] == 200

    # disableMfa: a wrong password is a 400, the right one turns it off and login is one step again.
    assert failed(apijs(base_url, "disableMfa", {"currentPassword": "wrong", "auth": token}),
                  400)["error"] == "invalid_request"
    assert ok(apijs(base_url, "disableMfa", {"currentPassword": PASSWORD, "auth": token})) == {"ok": True}
    assert not UserMfa.objects.exists()
    assert TOKEN_RE.fullmatch(api_login(base_url, "ada@example.com"))


def test_apijs_confirm_with_a_bad_code_is_a_json_400(base_url):
    UserFactory(email="ada@example.com")
    token = api_login(base_url, "ada@example.com")
    begun = ok(apijs(base_url, "enableMfa", {"auth": token}))
    body = failed(apijs(base_url, "confirmMfa", {"mfaToken": begun["mfa_token"], "otp": wrong_code(begun["secret"]),
                                                 "auth": token}), 400)
    assert body == {"error": "invalid_request", "error_description": "The one-time password is invalid",
                    "field": "otp"}
    assert ok(apijs(base_url, "getUserInfo", auth=token))["mfa"] == {"enabled": False}


def test_cli_login_with_otp_flag(cli, base_url):
    ada = UserFactory(email="ada@example.com")
    secret, _ = enrol(ada)
    proc = cli.run("login", "-u", "ada@example.com", "-p", PASSWORD, "--otp", steps(secret).current)
    assert proc.returncode == 0, show(proc)
    assert "Successfully completed login!" in proc.stdout, show(proc)
    token = cli.config["access_token"]
    assert TOKEN_RE.fullmatch(token) and cli.config["username"] == "ada@example.com"
    assert stored(token).client_label == "CLI2"  # both steps with the CLI's legacy client
    status, body = http(base_url, "GET", "/v1/user", token)
    assert (status, body["username"], body["mfa"]) == (200, "ada@example.com", {"enabled": True})


def test_cli_login_prompts_for_the_code_on_stdin(cli, base_url):
    ada = UserFactory(email="ada@example.com")
    secret, _ = enrol(ada)
    proc = cli.run("login", "-u", "ada@example.com", "-p", PASSWORD, input=steps(secret).current + "\n")
    assert proc.returncode == 0, show(proc)
    assert "Please enter a login code" in proc.stdout and "Successfully completed login!" in proc.stdout, show(proc)
    assert http(base_url, "GET", "/v1/user", cli.config["access_token"])[0] == 200


def test_cli_login_with_a_wrong_code_fails_and_stores_no_token(cli):
    ada = UserFactory(email="ada@example.com")
    secret, _ = enrol(ada)
    proc = cli.run("login", "-u", "ada@example.com", "-p", PASSWORD, "--otp", wrong_code(secret))
    assert proc.returncode != 0, show(proc)
    assert "This login code didn't work" in proc.stdout, show(proc)
    assert "The one-time password is invalid" in proc.stderr, show(proc)
    assert not cli.config.get("access_token")
    assert not AccessToken.objects.filter(user=ada).exists()


def test_cli_token_create_asks_for_the_code_after_the_password(cli, base_url):
    """`token create` signs in as the `user` client and sends the code as `CLI2` (its enterOtp)."""
    ada = UserFactory(email="ada@example.com")
    secret, _ = enrol(ada)
    codes = steps(secret)
    proc = cli.run("login", "-u", "ada@example.com", "-p", PASSWORD, "--otp", codes.current)
    assert proc.returncode == 0, show(proc)
    cli_token = cli.config["access_token"]

    proc = cli.converse("token", "create", answers=[("Please enter your password", PASSWORD),
                                                    ("Please enter a login code", codes.next)])
    assert proc.returncode == 0, show(proc)
    assert "Please enter a login code" in proc.stdout and "New access token expires on" in proc.stdout, show(proc)
    created = [t for t in TOKEN_RE.findall(proc.stdout) if t != cli_token]
    assert len(created) == 1, show(proc)
    assert stored(created[0]).client_label == "user"
    assert http(base_url, "GET", "/v1/user", created[0])[1]["username"] == "ada@example.com"
