"""A URL conf for tests/test_asgi.py: one coroutine view, one sync view, and the real routes after them."""

import asyncio
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
    return JsonResponse({"view": "sync", "thread": threading.current_thread().name, "async_to_sync": hops})


urlpatterns = [
    path("test-async/", waits),
    path("test-sync/", plain),
    path("", include("console.urls")),
]
