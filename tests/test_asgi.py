"""The ASGI entry point uvicorn serves (console/asgi.py): ordinary requests run Django's sync chain in one
thread hop, a coroutine view still takes Django's async path, and both answer exactly as before."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from django.test import override_settings

from console.asgi import CyanASGIHandler
from tests.support.api import user_token
from tests.factories import UserFactory


async def _call(app, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}
    inbox = [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict] = []

    async def receive():
        if inbox:
            return inbox.pop()
        await asyncio.Event().wait()  # the client never hangs up; Django cancels this once it has answered

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


@pytest.mark.django_db(transaction=True)  # the view runs on another thread, with its own connection
def test_api_requests_answer_through_the_entry_point_as_they_do_anywhere():
    user = UserFactory(email="asgi@example.com")
    token = user_token(user)
    app = CyanASGIHandler()
    status, body = asyncio.run(_call(app, "/v1/user", {"Authorization": f"Bearer {token}"}))
    assert status == 200 and body["username"] == "asgi@example.com"
    status, body = asyncio.run(_call(app, "/v1/user", {"Authorization": "Bearer not-a-token"}))
    assert status == 401 and body["error"] == "invalid_token"
    status, body = asyncio.run(_call(app, "/v1/no-such-route"))
    assert status == 404 and body["error"] == "not_found"


@override_settings(ROOT_URLCONF="tests.support.asgi_urls")
def test_a_sync_view_runs_in_one_worker_thread_and_a_coroutine_view_on_the_event_loop():
    app = CyanASGIHandler()

    async def both():
        loop_thread = threading.current_thread().name
        return loop_thread, await _call(app, "/test-sync/"), await _call(app, "/test-async/")

    loop_thread, (s_status, s_body), (a_status, a_body) = asyncio.run(both())
    assert (s_status, s_body["view"]) == (200, "sync") and s_body["thread"] != loop_thread
    assert s_body["async_to_sync"] == 0  # one hop: no trip back to the event loop between middleware and view
    assert (a_status, a_body["view"]) == (200, "async") and a_body["thread"] == loop_thread


@override_settings(ROOT_URLCONF="tests.support.asgi_urls")
def test_only_a_coroutine_view_is_sent_down_djangos_async_path(rf):
    app = CyanASGIHandler()
    assert app.takes_async_path(rf.get("/test-async/")) is True
    assert app.takes_async_path(rf.get("/test-sync/")) is False
    assert app.takes_async_path(rf.get("/v1/user")) is False
    assert app.takes_async_path(rf.get("/nowhere/at/all")) is False


@override_settings(ROOT_URLCONF="tests.support.asgi_urls")
def test_request_threads_are_reused_but_never_shared_by_two_requests_at_once():
    from tests.support import asgi_urls

    app = CyanASGIHandler()
    asgi_urls.GATE.clear()

    async def scenario():
        held = asyncio.ensure_future(_call(app, "/test-blocks/"))
        await asyncio.sleep(0.2)
        # While one request holds its thread, another is answered on a thread of its own.
        status, beside = await asyncio.wait_for(_call(app, "/test-sync/"), 5)
        assert not held.done()
        asgi_urls.GATE.set()
        _, blocked = await held
        after = [(await _call(app, "/test-sync/"))[1]["serial"] for _ in range(10)]
        return status, beside["serial"], blocked["serial"], after

    status, beside, blocked, after = asyncio.run(scenario())
    assert status == 200 and beside != blocked
    # Ten requests one after another started no thread: each ran on one the first two had left idle.
    assert set(after) <= {beside, blocked}


def test_the_entry_point_freezes_the_startup_heap():
    """Full collections over Django's startup heap stopped the web process for 66-108 ms (console/asgi.py
    console/heap.py); the module the server imports must leave that heap frozen."""
    import gc

    import console.asgi  # noqa: F401 (imported by the server exactly so)

    assert gc.get_freeze_count() > 10_000


@pytest.mark.django_db
def test_an_api_call_with_a_console_session_pays_nothing_for_the_console():
    """CurrentAccountMiddleware finds the console's user and account for pages only: an API call from a
    browser that is signed in to the console (its session cookie sent along) runs the same queries as one
    without it."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = UserFactory(email="both@example.com")
    token = user_token(user)
    plain, signed_in = Client(), Client()
    signed_in.force_login(user)
    counts = []
    for client in (plain, signed_in):
        client.get("/v1/user", HTTP_AUTHORIZATION=f"Bearer {token}")  # the token's last_used_at write, once
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/v1/user", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # The console itself still knows who is signed in.
    assert signed_in.get("/products/").status_code == 200
