"""The official, unmodified npm clients (particle-api-js@12.0.3, particle-cli@3.43.1) as test drivers.

particle-api-js runs through tests/clients/apijs.js (one call per run, result as JSON on stdout) or
tests/clients/apijs-devices.js (the same, plus `{"$buffer": "..."}` file uploads); particle-cli runs as a
subprocess with HOME pointing at a scratch directory whose ~/.particle/particle.config.json names the live server.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.factories import PASSWORD
from tests.support.env import need, node_available

CLIENTS_DIR = Path(__file__).resolve().parent.parent / "clients"
APIJS = CLIENTS_DIR / "apijs.js"
APIJS_DEVICES = CLIENTS_DIR / "apijs-devices.js"
NPM_TIMEOUT = 900
NODE_TIMEOUT = 60
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TOKEN_RE = re.compile(r"\b[0-9a-f]{40}\b")


# --- the one-off npm install ---------------------------------------------------------------------------


def _installed(modules: Path) -> bool:
    return all((modules / name / "package.json").is_file() for name in ("particle-api-js", "particle-cli"))


def install_npm_clients() -> Path:
    """tests/clients with node_modules installed (npm install once per checkout; it takes a minute or two).

    Several pytest-xdist workers may get here at once: each takes an exclusive file lock before it even looks,
    because a look during another worker's install sees half-extracted packages; a worker that waited finds
    the modules installed and does nothing.
    """
    need(node_available(), "node/npm not installed")
    modules = CLIENTS_DIR / "node_modules"
    digest = hashlib.sha1(str(CLIENTS_DIR).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"cyan-npm-install-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed(modules):
            try:
                proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=CLIENTS_DIR,
                                      capture_output=True, text=True, timeout=NPM_TIMEOUT)
            except subprocess.TimeoutExpired:
                need(False, f"npm install did not finish within {NPM_TIMEOUT}s")
            need(proc.returncode == 0, f"npm install failed ({proc.returncode}): {proc.stderr[-2000:]}")
            need(_installed(modules), f"npm install left no particle-api-js/particle-cli: {proc.stdout[-2000:]}")
    pkg = json.loads((modules / "particle-cli" / "package.json").read_text())
    assert pkg["version"] == "3.43.1", pkg["version"]
    assert json.loads((modules / "particle-api-js" / "package.json").read_text())["version"] == "12.0.3"
    return CLIENTS_DIR


# --- particle-api-js -----------------------------------------------------------------------------------


def _env(auth: str | None = None, client_id: str | None = None, client_secret: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTICLE_")}
    for key, value in (("PARTICLE_AUTH", auth), ("PARTICLE_CLIENT_ID", client_id),
                       ("PARTICLE_CLIENT_SECRET", client_secret)):
        if value is not None:
            env[key] = value
    return env


def _one(driver: Path, base_url: str, method: str, args: dict | None, env: dict) -> dict:
    proc = subprocess.run(["node", str(driver), base_url, method, json.dumps(args or {})], cwd=CLIENTS_DIR, env=env,
                          capture_output=True, text=True, timeout=NODE_TIMEOUT)
    assert proc.returncode == 0, f"{driver.name} {method} crashed ({proc.returncode}): {proc.stderr}"
    return json.loads(proc.stdout)


def _batch(driver: Path, base_url: str, payload: list[dict], env: dict) -> list[dict]:
    proc = subprocess.run(["node", str(driver), base_url, "-"], cwd=CLIENTS_DIR, env=env, input=json.dumps(payload),
                          capture_output=True, text=True, timeout=NODE_TIMEOUT)
    assert proc.returncode == 0, f"{driver.name} batch crashed ({proc.returncode}): {proc.stderr}"
    results = json.loads(proc.stdout)
    assert len(results) == len(payload)
    return results


def apijs(base_url: str, method: str, args: dict | None = None, *, auth: str | None = None,
          client_id: str | None = None, client_secret: str | None = None) -> dict:
    """One particle-api-js call; `auth` becomes the constructor's default token (sent on every request)."""
    return _one(APIJS, base_url, method, args, _env(auth, client_id, client_secret))


def apijs_batch(base_url: str, steps: list[dict], *, auth: str | None = None) -> list[dict]:
    """Several particle-api-js calls in one node process (steps: {method, args, auth?})."""
    return _batch(APIJS, base_url, steps, _env(auth))


def js(base_url: str, method: str, args: dict | None = None, *, auth: str | None = None,
       client_id: str | None = None, client_secret: str | None = None) -> dict:
    """One call through apijs-devices.js (file uploads as `{"$buffer": ...}`)."""
    return _one(APIJS_DEVICES, base_url, method, args, _env(auth, client_id, client_secret))


def js_batch(base_url: str, steps: list[tuple[str, dict]], *, auth: str | None = None) -> list[dict]:
    """Several apijs-devices.js calls in one node process, in order (steps: (method, args); args may carry their
    own `auth`)."""
    return _batch(APIJS_DEVICES, base_url, [{"method": m, "args": a} for m, a in steps], _env(auth))


def text_file(*lines: str) -> dict:
    return {"$buffer": "\n".join(lines) + "\n"}


def ok(result: dict, status: int = 200) -> dict:
    """The body of a successful api-js call, after checking the exact status the client saw."""
    assert result["ok"], f"api-js call failed: {result}"
    assert result["statusCode"] == status, result
    return result["body"]


def failed(result: dict, status: int) -> dict:
    """The parsed error body of a rejected api-js call; it must be JSON with error and error_description."""
    assert not result["ok"], f"expected HTTP {status}, the call succeeded: {result}"
    assert result["statusCode"] == status, result
    assert result["bodyParseError"] is None, f"error body was not JSON: {result}"
    body = result["body"]
    assert isinstance(body, dict) and body.get("error") and body.get("error_description"), result
    assert result["shortErrorDescription"] == body["error_description"]
    return body


def http(base_url: str, method: str, path: str, token: str | None = None) -> tuple[int, dict]:
    """A raw request over the wire (to check a token's fate independently of the clients)."""
    req = urllib.request.Request(base_url + path, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def api_login(base_url: str, email: str, password: str = PASSWORD) -> str:
    body = ok(apijs(base_url, "login", {"username": email, "password": password}))
    return body["access_token"]


def stored(raw_token: str):
    from console.models import AccessToken, hash_secret

    return AccessToken.objects.filter(token_hash=hash_secret(raw_token)).first()


def usernames(team_body) -> list[str]:
    """particle-api.md Part B §1.5: the docs say {ok, team:[...]}, the api-js type a bare array: accept either."""
    team = team_body["team"] if isinstance(team_body, dict) else team_body
    return [m["username"] for m in team]


def client_of(body: dict) -> dict:
    """createOAuthClient: the docs say {ok, client:{...}}, the api-js type the flat object: accept either."""
    return body["client"] if "client" in body else body


# --- the api-js tests' product -------------------------------------------------------------------------


class ApiJsProduct:
    """An org product (Boron, platform 13) with its owner logged in through api-js, and registered devices
    (manufactured, in no product yet: `add` imports them through api-js)."""

    def __init__(self, base_url: str, *, borons: int = 6, argons: int = 1):
        from tests.factories import UserFactory, make_org, make_product
        from tests.support.fleet import manufacture

        self.owner = UserFactory(email="owner@example.com")
        self.org = make_org(self.owner, "Acme")
        self.product = make_product(self.org, name="Trackers", platform_id=13)
        self.borons = manufacture(13, borons)
        self.argons = manufacture(12, argons) if argons else []
        self.token = api_login(base_url, self.owner.email)
        self.base_url = base_url

    def ids(self, start: int = 0, stop: int | None = None) -> list[str]:
        return [m.device_id for m in self.borons[start:stop]]

    def add(self, *device_ids: str) -> dict:
        """Import through api-js (one multipart file, as the CLI does), checking every id went in."""
        body = ok(js(self.base_url, "addDeviceToProduct", {"product": self.product.slug,
                                                           "file": text_file(*device_ids)}, auth=self.token))
        assert sorted(body["updatedDeviceIds"]) == sorted(device_ids), body
        return body


# --- particle-cli --------------------------------------------------------------------------------------


class Cli:
    """particle-cli 3.43.1 with its own HOME, pointed at the live server."""

    def __init__(self, home: Path, base_url: str):
        self.home = home
        self.base_url = base_url
        self.bin = CLIENTS_DIR / "node_modules" / "particle-cli" / _cli_bin()

    @property
    def config_path(self) -> Path:
        return self.home / ".particle" / "particle.config.json"

    @property
    def config(self) -> dict:
        return json.loads(self.config_path.read_text())

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PARTICLE_") and k not in ("home", "HOMEPATH", "USERPROFILE")}
        env.update(HOME=str(self.home), PARTICLE_DISABLE_UPDATE="1", NO_COLOR="1", FORCE_COLOR="0")
        return env

    def run(self, *args: str, input: str | None = None, timeout: int = NODE_TIMEOUT) -> subprocess.CompletedProcess:
        proc = subprocess.run(["node", str(self.bin), *args], cwd=self.home, env=self._env(),
                              input=input if input is not None else "", capture_output=True, text=True,
                              timeout=timeout)
        proc.stdout, proc.stderr = ANSI.sub("", proc.stdout), ANSI.sub("", proc.stderr)
        return proc

    def converse(self, *args: str, answers: list[tuple[str, str]],
                 timeout: int = NODE_TIMEOUT) -> subprocess.CompletedProcess:
        """Run the CLI typing each answer only once its prompt (a substring) is on screen. `run(input=...)`
        serves one prompt; for two, inquirer's first prompt drains the whole pipe and the second finds EOF."""
        proc = subprocess.Popen(["node", str(self.bin), *args], cwd=self.home, env=self._env(),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(proc.stdout.fileno(), 4096), b"")),
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        seen = 0
        try:
            for prompt, answer in answers:
                while True:
                    screen = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
                    found = screen.find(prompt, seen)
                    if found >= 0:
                        seen = found + len(prompt)
                        break
                    assert proc.poll() is None and time.monotonic() < deadline, f"no prompt {prompt!r}:\n{screen}"
                    time.sleep(0.05)
                proc.stdin.write(answer.encode() + b"\n")
                proc.stdin.flush()
            proc.stdin.close()
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        return subprocess.CompletedProcess(proc.args, proc.returncode, ANSI.sub("", b"".join(chunks).decode()),
                                           ANSI.sub("", stderr))

    def login(self, email: str, password: str = PASSWORD) -> str:
        proc = self.run("login", "-u", email, "-p", password)
        assert proc.returncode == 0, show(proc)
        assert "Successfully completed login!" in proc.stdout, show(proc)
        return self.config["access_token"]


def make_cli(home: Path, base_url: str) -> Cli:
    """A CLI with a fresh HOME whose config points at `base_url`."""
    home.mkdir()
    c = Cli(home, base_url)
    proc = c.run("config", "set", "apiUrl", base_url)
    assert proc.returncode == 0, show(proc)
    assert c.config["apiUrl"] == base_url
    return c


def _cli_bin() -> str:
    pkg = json.loads((CLIENTS_DIR / "node_modules" / "particle-cli" / "package.json").read_text())
    return pkg["bin"]["particle"] if isinstance(pkg["bin"], dict) else pkg["bin"]


def show(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


# --- particle-api-js event streams (tests/clients/apijs-events.js) ----------------------------------------------

APIJS_EVENTS = CLIENTS_DIR / "apijs-events.js"


class ApiJsStream:
    """One `getEventStream` held open by api-js in a node process; `lines()` are what it reported so far."""

    def __init__(self, base_url: str, args: dict, *, auth: str, wanted: int = 1, seconds: float = 30):
        self.proc = subprocess.Popen(["node", str(APIJS_EVENTS), base_url, json.dumps(args), str(wanted),
                                      str(seconds)], cwd=CLIENTS_DIR, env=_env(auth), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.reports: list[dict] = []

    def next(self, timeout: float = 20) -> dict:
        """The next report (waits for it)."""
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"api-js reported nothing in {timeout} s; so far {self.reports}")
        line = self.proc.stdout.readline()
        assert line, f"api-js ended: {self.proc.stderr.read()}"
        self.reports.append(json.loads(line))
        return self.reports[-1]

    def until(self, kind: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            report = self.next(max(0.1, deadline - time.monotonic()))
            if report["type"] == kind:
                return report

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
