"""Queries compiled once and run many times: for the few lookups every API request makes.

Django compiles a queryset to SQL anew each time it runs, and for a one-row lookup by key the compiling
costs more than the database does: here ~0.5 ms to compile and ~0.5 ms more to build the row, against
~0.2 ms for PostgreSQL to answer (bench/README.md, "Function calls"). A function call pays for three such
lookups (its token, its product, its device) before it reaches the device.

`Prepared` takes a function that builds the queryset from placeholder values, compiles it once per
database, and afterwards only sends the SQL with the real values and builds the model instances exactly as
Django's ModelIterable does (field converters, `select_related` populators, annotations). It still goes
through Django's cursor wrapper, so query counting and logging see it like any other query.

Only plain equality lookups can be prepared: the placeholder must reach the SQL parameters unchanged. A
lookup that transforms its value (`icontains`, a date lookup, `in` with a list) is refused when the query
is first compiled, not silently run with the placeholder.

    _TOKEN = Prepared(lambda p: AccessToken.objects.select_related("user").filter(token_hash=p.text("hash")))
    token = _TOKEN.first(hash=digest)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, get_related_populators

# Placeholders: values no real lookup passes. Integers stay inside 32 bits, because Django turns an
# out-of-range integer lookup into "matches nothing" before any parameter is written.
_TEXT = "\u2983prepared:%s\u2984"
_INT_BASE = 2_013_265_000


class _Placeholders:
    def __init__(self) -> None:
        self.names: dict[tuple[type, object], str] = {}  # (type, value) → name: True must not pass for 1

    def _add(self, name: str, value: object) -> object:
        if name in self.names.values():
            raise ImproperlyConfigured(f"prepared query: the parameter {name!r} is named twice")
        self.names[(type(value), value)] = name
        return value

    def text(self, name: str) -> str:
        return self._add(name, _TEXT % name)

    def integer(self, name: str) -> int:
        return self._add(name, _INT_BASE + len(self.names))


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[tuple[str | None, object], ...]  # (parameter name, None) or (None, a constant)
    model: type[Model]
    init_list: tuple[str, ...]
    model_slice: slice
    converters: tuple[tuple[int, tuple, Any], ...]
    populators: tuple
    annotations: tuple[tuple[str, int], ...]


class Prepared:
    def __init__(self, build: Callable[[_Placeholders], QuerySet]) -> None:
        self._build = build
        self._plans: dict[tuple[str, str], _Plan] = {}
        self._lock = threading.Lock()

    def _plan(self, alias: str) -> _Plan:
        connection = connections[alias]
        key = (alias, connection.vendor)
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.get(key) or self._compile(alias)
                self._plans[key] = plan
        return plan

    def _compile(self, alias: str) -> _Plan:
        placeholders = _Placeholders()
        qs = self._build(placeholders)
        if qs._iterable_class is not ModelIterable or qs._prefetch_related_lookups or qs._known_related_objects:
            raise ImproperlyConfigured("prepared query: only a plain model queryset (no values(), prefetch or "
                                       "related managers) can be prepared")
        if qs.query.is_sliced:
            raise ImproperlyConfigured("prepared query: first() adds the LIMIT itself")
        compiler = qs[:1].query.get_compiler(using=alias)
        sql, raw_params = compiler.as_sql()
        params, seen = [], set()
        for value in raw_params:
            name = placeholders.names.get((type(value), value)) if isinstance(value, (str, int)) else None
            if name is not None:
                params.append((name, None))
                seen.add(name)
            else:
                params.append((None, value))
        missing = set(placeholders.names.values()) - seen
        if missing:
            raise ImproperlyConfigured(f"prepared query: the lookup changed the value of {sorted(missing)} before it "
                                       "reached the SQL; only plain equality lookups can be prepared")
        select, klass_info = compiler.select, compiler.klass_info
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        converters = compiler.get_converters([s[0] for s in select[0:compiler.col_count]])
        return _Plan(
            sql=sql, params=tuple(params), model=klass_info["model"],
            init_list=tuple(f[0].target.attname for f in select[start:end]), model_slice=slice(start, end),
            converters=tuple((pos, tuple(convs), expr) for pos, (convs, expr) in converters.items()),
            populators=tuple(get_related_populators(klass_info, select, alias)),
            annotations=tuple(compiler.annotation_col_map.items()),
        )

    def first(self, using: str = "default", **values: object) -> Model | None:
        """The first row for these parameter values, as a model instance (None if there is none). Meant for
        lookups by a unique key: there is no ORDER BY unless the built queryset has one."""
        plan = self._plan(using)
        connection = connections[using]
        try:
            params = [values[name] if name is not None else constant for name, constant in plan.params]
        except KeyError as missing:
            raise TypeError(f"prepared query: no value for {missing}") from None
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        row = list(row)
        for pos, convs, expression in plan.converters:
            value = row[pos]
            for converter in convs:
                value = converter(value, expression, connection)
            row[pos] = value
        obj = plan.model.from_db(using, list(plan.init_list), row[plan.model_slice])
        for populator in plan.populators:
            populator.populate(row, obj)
        for attr, pos in plan.annotations:
            setattr(obj, attr, row[pos])
        return obj
