"""Building a webhook's HTTP request from its config and one event (particle-api.md §14), and signing it.

Pure functions of (config, event, secret, time): the consumer, the worker, the test button and the unit tests
all build the same request. Beyond Particle, every request carries

* `X-Cyan-Event-Id`: the bus event's id, the same on every retry, duplicate and replay (deduplicate on it);
* `X-Cyan-Timestamp`: Unix seconds when this attempt was signed;
* `X-Cyan-Signature`: `sha256=` + hex HMAC-SHA256 with the integration's signing secret over
  `<timestamp>.` followed by the exact body bytes (an empty body for GET). A receiver recomputes it and
  compares in constant time, and may refuse old timestamps to stop replays by a third party.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from integrations import templates
from integrations.transport import HookRequest

USER_AGENT = "ParticleBot/1.1 (https://docs.particle.io/webhooks)"
EVENT_ID_HEADER = "X-Cyan-Event-Id"
TIMESTAMP_HEADER = "X-Cyan-Timestamp"
SIGNATURE_HEADER = "X-Cyan-Signature"
OWN_HEADERS = {h.lower() for h in (EVENT_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)}


class TemplateFailed(ValueError):
    """A template rendered to something unusable (e.g. a json template that is not JSON): permanent."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_valid(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (the tests do it too)."""
    return hmac.compare_digest(signature(secret, int(timestamp), body), header)


def default_payload(event: dict) -> dict:
    return {"event": event["name"], "data": event["data"], "coreid": event["coreid"],
            "published_at": event["published_at"]}


def _strings(mapping: dict) -> dict:
    return {str(k): "" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else str(v))
            for k, v in mapping.items()}


def build_request(*, config: dict, event: dict, product_hook: bool, secret: str, timestamp: int,
                  context: dict | None = None) -> HookRequest:
    """The request for `event` (the bus event's fields plus its `id`) to the hook described by `config`.
    `context`: the event's template variables, when the caller has made them already."""
    if context is None:
        context = templates.event_context(event, product_hook=product_hook)
    defaults = {} if config.get("noDefaults") else default_payload(event)
    method = config.get("requestType", "POST")
    url = templates.render(config["url"], context)
    headers = {"User-Agent": USER_AGENT}
    headers.update(_strings(templates.render_tree(config.get("headers") or {}, context)))
    query = _strings(templates.render_tree(config.get("query") or {}, context))
    body = b""
    if "json" in config:
        value = config["json"]
        if isinstance(value, str):
            rendered = templates.render(value, context)
            try:
                parsed = json.loads(rendered)
            except ValueError:
                raise TemplateFailed("the json template did not render to JSON")
            if isinstance(parsed, dict) and defaults:
                parsed = {**defaults, **parsed}
        else:
            parsed = templates.render_tree(value, context)
            if isinstance(parsed, dict) and defaults:
                parsed = {**defaults, **parsed}
        body = json.dumps(parsed, separators=(",", ":")).encode()
        headers.setdefault("Content-Type", "application/json")
    elif "form" in config:
        form = {**_strings(defaults), **_strings(templates.render_tree(config["form"], context))}
        body = urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif "body" in config:
        body = templates.render(config["body"], context).encode()
    elif method == "GET":
        query = {**_strings(defaults), **query}
    elif defaults:
        body = urlencode(_strings(defaults)).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if config.get("auth"):
        auth = templates.render_tree(config["auth"], context)
        token = base64.b64encode(f"{auth.get('username', '')}:{auth.get('password', '')}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    parts = urlsplit(url)
    if query:
        merged = parse_qsl(parts.query, keep_blank_values=True) + list(query.items())
        url = urlunsplit(parts._replace(query=urlencode(merged)))
    headers = {k: v for k, v in headers.items() if k.lower() not in OWN_HEADERS}
    headers[EVENT_ID_HEADER] = event["id"]
    headers[TIMESTAMP_HEADER] = str(timestamp)
    headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    return HookRequest(method=method, url=url, headers=headers, body=body,
                       verify_tls=bool(config.get("rejectUnauthorized", True)), host=(parts.hostname or "").lower())


def response_topic(config: dict, event: dict, *, product_hook: bool, context: dict | None = None) -> str:
    default = "{{PARTICLE_DEVICE_ID}}/hook-response/{{PARTICLE_EVENT_NAME}}" if product_hook \
        else "hook-response/{{PARTICLE_EVENT_NAME}}"
    return templates.render(config.get("responseTopic") or default,
                            context or templates.event_context(event, product_hook=product_hook))


def error_topic(config: dict, event: dict, *, product_hook: bool, context: dict | None = None) -> str:
    return templates.render(config.get("errorResponseTopic") or "hook-error/{{PARTICLE_EVENT_NAME}}",
                            context or templates.event_context(event, product_hook=product_hook))


def response_data(config: dict, event: dict, body: bytes, *, product_hook: bool, context: dict | None = None) -> str:
    """What `hook-response` carries: the body, or `responseTemplate` rendered with the event's variables and
    the parsed JSON response (its keys at the top level)."""
    text = body.decode("utf-8", errors="replace")
    template = config.get("responseTemplate")
    if not template:
        return text
    context = context or templates.event_context(event, product_hook=product_hook)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        context = {**context, **parsed}
    elif parsed is not None:
        context = {**context, "response": parsed}
    return templates.render(template, context)


def chunks(data: str, *, size: int = 512, limit: int = 100_000) -> list[str]:
    """The first `limit` bytes of `data` in `size`-byte pieces (UTF-8 characters are never split)."""
    raw = data.encode()[:limit]
    out, start = [], 0
    while start < len(raw):
        end = min(start + size, len(raw))
        while end < len(raw) and end > start and (raw[end] & 0xC0) == 0x80:
            end -= 1  # do not cut a multi-byte character in two
        out.append(raw[start:end].decode("utf-8", errors="ignore"))
        start = end
    return out
