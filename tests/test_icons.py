"""The `{% icon %}` tag (console/templatetags/icons.py) renders exactly what including the icon template did,
for the console's icons and the device pages' own (which fall through to the console's), and reuses it."""

from __future__ import annotations

from django.template import Context, Template
from django.template.loader import render_to_string

from console.templatetags import icons


def test_an_icon_is_the_icon_templates_markup_rendered_once():
    icons._rendered.cache_clear()
    cases = [('"plus" size=16', "console", {"name": "plus", "size": 16}),
             ('"x"', "console", {"name": "x"}),
             ('"chevron" size=14 cls="flip"', "console", {"name": "chevron", "size": 14, "cls": "flip"}),
             ('"approve" size=14 set="devices"', "devices", {"name": "approve", "size": 14}),
             ('"shield" size=36 set="devices"', "devices", {"name": "shield", "size": 36})]  # falls through
    for args, folder, context in cases:
        tag = Template("{% icon " + args + " %}").render(Context({"size": 99, "cls": "leak"}))
        assert tag == render_to_string(f"{folder}/_icon.html", context), args
        assert tag.strip().startswith("<svg") and 'width="99"' not in tag and "leak" not in tag
    Template('{% icon "plus" size=16 %}').render(Context())
    assert icons._rendered.cache_info().hits >= 1


def test_an_icon_named_by_a_variable(settings):
    item = {"icon": "devices"}
    expected = render_to_string("console/_icon.html", {"name": "devices"})
    assert Template("{% icon item.icon %}").render(Context({"item": item})) == expected
    settings.DEBUG = True  # a development server renders afresh (templates may have changed)
    assert Template("{% icon item.icon %}").render(Context({"item": item})) == expected
