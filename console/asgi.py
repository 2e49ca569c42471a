"""ASGI entry point (uvicorn): one process serves the console, the API and, later, SSE streams.

`CyanASGIHandler` is Django's ASGI handler with one thread hop per ordinary request instead of four. Django
runs a chain of sync middleware under ASGI by hopping from the event loop to a thread (the middleware), back
to the loop (async_to_sync around its async inner handler) and to the thread again (the sync view), and every
hop costs scheduling and a context copy. All of Cyan's middleware and nearly all its views are sync, so for
those this runs Django's own sync handler, the one WSGI uses, in a single `sync_to_async` call: ~0.8 ms less
CPU per request here (bench/gateway.py calls). A request whose view is a coroutine (an event stream) still
takes Django's async path, where it holds no thread while it waits.

Django also gives every request a thread of its own (a fresh single-thread executor in its
ThreadSensitiveContext), so each request started a thread and set up a new database wrapper in it. Here the
request's executor is lent from a small stock of idle ones (`_Executors`) and returned when the request is
done, as a WSGI server reuses its threads: ~0.5 ms less CPU per request. A request still has its thread to
itself while it runs: a call waiting 30 s on a silent device holds only its own. An event stream is lent
none: it would hold its thread for as long as it stays open, and a thousand streams would be a thousand
threads. Its few sync steps (the middleware, the token and scope lookups) run on asgiref's shared thread or
in the default pool.

A coroutine view may name `sync_methods` (method → sync view): those methods take the sync chain to that view
instead (`POST /v1/devices/events` publishes, `GET` on the same path streams).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import Resolver404, ResolverMatch, get_resolver

from console.heap import settle_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")


class _SyncHandler(BaseHandler):
    """The sync middleware chain; reuses the match `CyanASGIHandler` already made rather than resolve twice."""

    def resolve_request(self, request):
        match = request.__dict__.pop("_cyan_match", None)
        if match is not None and not hasattr(request, "urlconf"):
            request.resolver_match = match
            return match
        return super().resolve_request(request)


class _Executors:
    """Single-thread executors lent to requests one at a time and kept for the next when returned (up to
    `keep` idle ones). Used only from the event loop's thread, so it needs no lock."""

    def __init__(self, keep: int = 32):
        self.keep = keep
        self.idle: list[ThreadPoolExecutor] = []

    def lend(self) -> ThreadPoolExecutor:
        return self.idle.pop() if self.idle else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        # Django's handler awaits every sync call of the request, a cancelled one included (asgiref waits
        # for the thread to finish), so an executor comes back with nothing running on it.
        if len(self.idle) < self.keep:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)


class CyanASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self._sync = _SyncHandler()
        self._sync.load_middleware(is_async=False)
        self._executors = _Executors()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # as Django's handler: this process serves HTTP only
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if scope.get("method") == "GET" and "/events" in scope.get("path", "") and self._streams(scope):
            await self.handle(scope, receive, send)
            return
        executor = self._executors.lend()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._executors.give_back(executor)

    @staticmethod
    def _streams(scope) -> bool:
        """Does this request open an event stream (a coroutine view marked `streams`)?"""
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        try:
            return getattr(get_resolver().resolve(path).func, "streams", False)
        except Resolver404:
            return False

    def takes_async_path(self, request) -> bool:
        """Is the view behind this request a coroutine (so Django's async path should serve it)?"""
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return False  # the sync chain answers it with the console's or the API's 404
        sync_view = getattr(match.func, "sync_methods", {}).get(request.method)
        if sync_view is not None:
            match = ResolverMatch(sync_view, match.args, match.kwargs, match.url_name, match.app_names,
                                  match.namespaces, match.route, match.tried, match.captured_kwargs,
                                  match.extra_kwargs)
        request._cyan_match = match
        return iscoroutinefunction(match.func)

    async def run_get_response(self, request):
        if self.takes_async_path(request):
            request.__dict__.pop("_cyan_match", None)
            return await super().run_get_response(request)
        response = await sync_to_async(self._sync.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response


django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does before its handler
application = CyanASGIHandler()
# Import every view module now rather than on the first requests, then freeze the heap (console/heap.py).
get_resolver().url_patterns  # noqa: B018 (the import is the point)
settle_heap()
