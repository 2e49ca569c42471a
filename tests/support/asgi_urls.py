"""A URL conf for tests/test_asgi.py: one coroutine view, one sync view, and the real routes after them."""

import asyncio
import itertools
import threading
import traceback

from django.http import JsonResponse
from django.urls import include, path


async def waits(request):
    await asyncio.sleep(0)
    return JsonResponse({"view": "async", "thread": threading.current_thread().name})


def plain(request):
    # Stock Django under ASGI reaches a sync view through async_to_sync (and back through sync_to_async):
    # those frames on the stack are the extra hops console/asgi.py exists to avoid.
    hops = sum(1 for frame in traceback.extract_stack() if frame.name == "run_until_future")
    return JsonResponse({"view": "sync", "thread": threading.current_thread().name, "async_to_sync": hops,
                         "serial": thread_serial()})


GATE = threading.Event()
_serials = itertools.count()
_this_thread = threading.local()


def thread_serial() -> int:
    """A number no other thread of this process ever had (thread names and idents can repeat)."""
    if not hasattr(_this_thread, "serial"):
        _this_thread.serial = next(_serials)
    return _this_thread.serial


def blocks(request):
    """Holds its thread until a test opens GATE (as a call waiting on a silent device does)."""
    GATE.wait(10)
    return JsonResponse({"view": "blocks", "thread": threading.current_thread().name, "serial": thread_serial()})


urlpatterns = [
    path("test-blocks/", blocks),
    path("test-async/", waits),
    path("test-sync/", plain),
    path("", include("console.urls")),
]
