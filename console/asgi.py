"""ASGI entry point (uvicorn): one process serves the console, the API and, later, SSE streams.

`CyanASGIHandler` is Django's ASGI handler with one thread hop per ordinary request instead of four. Django
runs a chain of sync middleware under ASGI by hopping from the event loop to a thread (the middleware), back
to the loop (async_to_sync around its async inner handler) and to the thread again (the sync view), and every
hop costs scheduling and a context copy. All of Cyan's middleware and nearly all its views are sync, so for
those this runs Django's own sync handler, the one WSGI uses, in a single `sync_to_async` call: ~0.8 ms less
CPU per request here (bench/gateway.py calls). A request whose view is a coroutine (an event stream) still
takes Django's async path, where it holds no thread while it waits.
"""

from __future__ import annotations

import os

import django
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import Resolver404, get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")


class _SyncHandler(BaseHandler):
    """The sync middleware chain; reuses the match `CyanASGIHandler` already made rather than resolve twice."""

    def resolve_request(self, request):
        match = request.__dict__.pop("_cyan_match", None)
        if match is not None and not hasattr(request, "urlconf"):
            request.resolver_match = match
            return match
        return super().resolve_request(request)


class CyanASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self._sync = _SyncHandler()
        self._sync.load_middleware(is_async=False)

    def takes_async_path(self, request) -> bool:
        """Is the view behind this request a coroutine (so Django's async path should serve it)?"""
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return False  # the sync chain answers it with the console's or the API's 404
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
