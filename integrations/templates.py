"""Mustache templates the way Particle's webhooks read them, rendered by chevron.

Why chevron (not a hand-written renderer, and not pystache): it follows the mustache spec, resolves dotted
paths with array indexes (`c.0.d`, which Particle's docs show and pystache's context lookup cannot), and its
tokenizer refuses malformed templates (an unclosed section, a stray `{{/x}}`) with a message, so a bad template
is a 400 at create time instead of a silent wrong request later; pystache drops an unclosed section silently.

Partials are refused: Particle has none, and chevron would read `{{> name}}` from the file system.
"""

from __future__ import annotations

import base64
import functools
import json

import chevron
from chevron.tokenizer import ChevronError, tokenize

from console.errors import ValidationFailed


def check(template: str, *, field: str) -> None:
    """A 400 naming `field` unless `template` is a well-formed mustache template without partials."""
    try:
        tokens = _tokens(template)
    except ChevronError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "malformed template"
        raise ValidationFailed(f"{field} is not a valid mustache template: {first}", field=field)
    if any(kind == "partial" for kind, _ in tokens):
        raise ValidationFailed(f"{field} may not use partials ({{{{> name}}}})", field=field)


def check_tree(value, *, field: str) -> None:
    """`check` every string inside a JSON value (keys too: Particle renders both)."""
    if isinstance(value, str):
        check(value, field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            check(str(key), field=field)
            check_tree(item, field=field)
    elif isinstance(value, list):
        for item in value:
            check_tree(item, field=field)


def render(template: str, context: dict) -> str:
    if "{{" not in template:  # no tag at all (most URLs): nothing to render
        return template
    return chevron.render(_tokens(template), context, partials_path=None)


@functools.lru_cache(maxsize=2048)
def _tokens(template: str) -> tuple:
    # A hook renders the same few templates for every event: tokenizing each once per process halved the
    # cost of building a request. chevron renders a token sequence as it would the string.
    return tuple(tokenize(template))


def render_tree(value, context: dict):
    """Render every string (and key) of a JSON value; other values pass through."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, dict):
        return {render(str(k), context): render_tree(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_tree(v, context) for v in value]
    return value


def event_context(event: dict, *, product_hook: bool) -> dict:
    """The variables a template sees for `event` (the bus event's fields): Particle's names, the SPARK_
    aliases, and, when the data is a JSON object, its keys (which never override Particle's own names)."""
    whole = {"event": event["name"], "data": event["data"], "coreid": event["coreid"],
             "published_at": event["published_at"], "ttl": event.get("ttl", 60)}
    product_id = event.get("product_id")
    context: dict = {}
    try:
        parsed = json.loads(event["data"]) if event["data"] else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        context.update(parsed)
    particle = {
        "PARTICLE_DEVICE_ID": event["coreid"],
        "PARTICLE_EVENT_NAME": event["name"],
        "PARTICLE_EVENT_VALUE": event["data"],
        "PARTICLE_PUBLISHED_AT": event["published_at"],
        "PARTICLE_EVENT_ID": event.get("id", ""),
        "PRODUCT_ID": "" if product_id is None else str(product_id),
        "PARTICLE_EVENT_JSON": json.dumps(whole, separators=(",", ":")),
        "PARTICLE_EVENT_BASE64": base64.b64encode(json.dumps(whole, separators=(",", ":")).encode()).decode(),
    }
    if product_hook:
        # The firmware version and the device's customer are not on the bus event: empty when unknown, as
        # Particle's docs allow.
        particle["PRODUCT_USER_ID"] = str(event.get("product_user_id") or "")
        particle["PRODUCT_VERSION"] = str(event.get("product_version") or "")
    for key, value in list(particle.items()):
        if key.startswith("PARTICLE_"):
            particle["SPARK_" + key.removeprefix("PARTICLE_")] = value
    particle["SPARK_CORE_ID"] = event["coreid"]
    context.update(particle)
    return context
