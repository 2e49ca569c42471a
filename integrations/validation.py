"""Turning a webhook body (Particle's field names, JSON or form) into the config an `Integration` stores.

Every refusal is a 400 naming the field. The rules are particle-api.md §14: `event` a 1–64 character prefix,
`requestType` GET|POST|PUT|DELETE (POST by default), `json` / `form` / `body` mutually exclusive, mustache
templates that parse, `rejectUnauthorized` true by default; plus Cyan's own: an http(s) URL whose literal
address, if it is one, is allowed (integrations/targets.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from console import validation
from console.errors import ValidationFailed
from integrations import templates
from integrations.targets import address_allowed, literal_address

REQUEST_TYPES = ("GET", "POST", "PUT", "DELETE")
DEVICE_ID = re.compile(r"[0-9a-f]{24}")
MAX_TEMPLATE = 16_384
BOOLEANS = {"noDefaults": False, "rejectUnauthorized": True, "unchunked": False, "dataUrlResponseEvent": False}
TOPICS = ("responseTopic", "errorResponseTopic", "responseTemplate")
# Other integration types Particle has; named so that asking for one is a clear "not here" rather than a typo.
KNOWN_OTHER_TYPES = ("AzureIotHub", "GoogleCloudPubSub", "GoogleMaps", "Datadog", "Blynk", "Ubidots", "Losant")


@dataclass
class WebhookFields:
    name: str
    event: str
    device_id: str
    disabled: bool
    config: dict


def _mapping(value, *, field: str, values: str = "strings") -> dict:
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be an object", field=field)
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ValidationFailed(f"{field} keys must be non-empty strings", field=field)
        if values == "strings":
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ValidationFailed(f"{field}.{key} must be a string", field=field)
            item = str(item)
        out[key] = item
    templates.check_tree(out, field=field)
    return out


def _template(value, *, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field=field)
    if len(value) > MAX_TEMPLATE:
        raise ValidationFailed(f"{field} must be at most {MAX_TEMPLATE} characters", field=field)
    templates.check(value, field=field)
    return value


def _url(value) -> str:
    url = validation.text(value, field="url", max_length=2000)
    templates.check(url, field="url")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValidationFailed("url must be an http:// or https:// URL", field="url")
    if "{{" not in parts.netloc:
        host = parts.hostname or ""
        literal = literal_address(host)
        if literal is not None and not address_allowed(literal):
            raise ValidationFailed(f"url points at {literal}, a private address; webhooks may only reach "
                                   "public ones", field="url")
    return url


def integration_type(data: dict, *, default: str = "Webhook") -> str:
    kind = data.get("integration_type") or default
    if kind != "Webhook":
        if kind in KNOWN_OTHER_TYPES:
            raise ValidationFailed(f"integration_type {kind} is not supported here; only Webhook is",
                                   field="integration_type")
        raise ValidationFailed(f"integration_type must be Webhook (got {str(kind)[:40]!r})", field="integration_type")
    return kind


def webhook_fields(data: dict) -> WebhookFields:
    """Validate a whole webhook body (create, or PUT, which replaces the config)."""
    event = validation.text(data.get("event"), field="event", max_length=64)
    if "*" in event:
        raise ValidationFailed("event is a prefix; wildcards are not allowed", field="event")
    name = validation.text(data.get("name"), field="name", max_length=200, required=False)
    device = next((data[k] for k in ("deviceID", "deviceId", "deviceid") if data.get(k) not in (None, "")), "")
    device_id = validation.text(device, field="deviceID", max_length=24, required=False).lower()
    if device_id and not DEVICE_ID.fullmatch(device_id):
        raise ValidationFailed("deviceID must be a 24-character hex device id", field="deviceID")
    disabled = validation.boolean(data.get("disabled"), field="disabled", default=False)
    request_type = str(data.get("requestType") or data.get("request_type") or "POST").strip().upper()
    if request_type not in REQUEST_TYPES:
        raise ValidationFailed("requestType must be one of GET, POST, PUT, DELETE", field="requestType")
    config: dict = {"url": _url(data.get("url")), "requestType": request_type}
    given = [k for k in ("json", "form", "body") if data.get(k) not in (None, "")]
    if len(given) > 1:
        raise ValidationFailed(f"json, form and body are mutually exclusive (got {', '.join(given)})", field=given[1])
    if "json" in given:
        value = data["json"]
        if isinstance(value, str):
            config["json"] = _template(value, field="json")
        elif isinstance(value, (dict, list)):
            templates.check_tree(value, field="json")
            config["json"] = value
        else:
            raise ValidationFailed("json must be an object or a string template", field="json")
    if "form" in given:
        config["form"] = _mapping(data["form"], field="form")
    if "body" in given:
        config["body"] = _template(data["body"], field="body")
    for key in ("query", "headers"):
        if data.get(key) not in (None, ""):
            config[key] = _mapping(data[key], field=key)
    auth = data.get("auth")
    if auth not in (None, ""):
        auth = _mapping(auth, field="auth")
        if set(auth) - {"username", "password"} or "username" not in auth:
            raise ValidationFailed("auth must be {username, password}", field="auth")
        config["auth"] = {"username": auth["username"], "password": auth.get("password", "")}
    for key in TOPICS:
        if data.get(key) not in (None, ""):
            config[key] = _template(data[key], field=key)
    for key, default in BOOLEANS.items():
        config[key] = validation.boolean(data.get(key), field=key, default=default)
    return WebhookFields(name=name, event=event, device_id=device_id, disabled=disabled, config=config)
