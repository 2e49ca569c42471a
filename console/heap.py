"""Keeping the garbage collector off a long-running process's startup heap.

CPython's full collections walk every tracked object. In a Django process most of them are built at
startup (models, URL patterns, templates, settings) and live for good, so each full collection re-walks
them to free nothing: in the web process at 200 calls/s that was a 66-108 ms stop of every request,
several times a minute (bench/README.md, "Function calls"). `settle_heap`, called once a process has
loaded what it serves, collects what startup left behind and freezes the rest out of the collector's sight
(`gc.freeze`); objects made later are collected as usual.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    gc.collect()
    gc.freeze()
