"""`{% icon name size=16 cls="…" set="devices" %}`: an SVG icon of console/_icon.html (or of `set`'s
_icon.html, which adds its own and falls through to the console's), rendered once per process for each
name, size and class and reused. Icons are static markup; as includes they cost a long if/elif chain each
time (~0.2 ms apiece, 10 ms of a quarantine page of 25 rows with two buttons each; bench/README.md).
Built in for every template (settings.TEMPLATES), so no `{% load %}` is needed."""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.conf import settings
from django.template.loader import render_to_string

register = template.Library()


def _render(source: str, name, size, cls) -> str:
    return render_to_string(source, {"name": name, "size": size, "cls": cls})  # the values an include passed


_rendered = lru_cache(maxsize=1024)(_render)


@register.simple_tag
def icon(name, size=None, cls="", set="console"):
    source = f"{set}/_icon.html"
    if settings.DEBUG:  # templates may change under a development server: render afresh
        return _render(source, name, size, cls)
    try:
        return _rendered(source, name, size, cls)
    except TypeError:  # an unhashable value cannot be a cache key: render it, uncached
        return _render(source, name, size, cls)
