"""Body parsers: JSON, and form and multipart bodies that understand qs-style brackets (`groups[]=a`,
`account_info[first_name]=x`), as Particle's curl examples and api-js's qs encoding send them. The result is a
plain dict, like JSON. No Particle body nests deeper than a few levels, so a body nested past `MAX_DEPTH` is a
400 before anything walks it (a thousand levels would exhaust Python's recursion limit: a 500)."""

from __future__ import annotations

import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, FormParser, JSONParser, MultiPartParser

_PART = re.compile(r"\[([^\[\]]*)\]")
MAX_DEPTH = 32
TOO_DEEP = f"The request body nests deeper than {MAX_DEPTH} levels"


def _depth(value) -> int:
    """How deeply lists and objects nest in `value`, walked without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        level += 1
        if level > MAX_DEPTH:
            return level
        deepest = max(deepest, level)
        stack.extend((child, level) for child in node)
    return deepest


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP)
        if _depth(data) > MAX_DEPTH:
            raise ParseError(TOO_DEEP)
        return data


def unflatten(pairs) -> dict:
    """[("a[b]", "1"), ("c[]", "x"), ("c[]", "y"), ("d[0]", "z")] -> {"a": {"b": "1"}, "c": ["x", "y"], "d": ["z"]}."""
    out: dict = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head] + (_PART.findall("[" + rest) if rest else [])
        if len(path) > MAX_DEPTH:
            raise ParseError(TOO_DEEP)
        _assign(out, path, value)
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
