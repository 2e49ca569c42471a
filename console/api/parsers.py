"""Form and multipart parsers that understand qs-style brackets (`groups[]=a`, `account_info[first_name]=x`),
as Particle's curl examples and api-js's qs encoding send them. The result is a plain dict, like JSON."""

from __future__ import annotations

import re

from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.parsers import DataAndFiles

_PART = re.compile(r"\[([^\[\]]*)\]")


def unflatten(pairs) -> dict:
    """[("a[b]", "1"), ("c[]", "x"), ("c[]", "y"), ("d[0]", "z")] -> {"a": {"b": "1"}, "c": ["x", "y"], "d": ["z"]}."""
    out: dict = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        _assign(out, [head] + (_PART.findall("[" + rest) if rest else []), value)
    return {k: _lists_from_indexes(v) for k, v in out.items()}


def _assign(node: dict, path: list[str], value) -> None:
    key, rest = path[0], path[1:]
    if not rest:
        node[key] = value  # a repeated plain key: the last one wins, as in Django's QueryDict
        return
    if rest[0] == "":  # key[]=v appends
        items = node.get(key)
        if not isinstance(items, list):
            items = node[key] = []
        items.append(value)
        return
    child = node.get(key)
    if not isinstance(child, dict):
        child = node[key] = {}
    _assign(child, rest, value)


def _lists_from_indexes(node):
    """qs's default array format is key[0]=a&key[1]=b: turn all-digit dicts back into lists."""
    if isinstance(node, dict):
        node = {k: _lists_from_indexes(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
        return node
    if isinstance(node, list):
        return [_lists_from_indexes(v) for v in node]
    return node


class BracketFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        query_dict = super().parse(stream, media_type, parser_context)
        return unflatten((k, v) for k, values in query_dict.lists() for v in values)


class BracketMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        data = unflatten((k, v) for k, values in parsed.data.lists() for v in values)
        return DataAndFiles(data, parsed.files)
