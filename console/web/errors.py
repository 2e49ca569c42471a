"""The console's error pages: 403 (templates/403.html, also Django's handler's), 404, 405 and 500."""

import logging

from django.conf import settings
from django.http import HttpResponseServerError
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template import loader

log = logging.getLogger("console.access")


def forbidden(request, reason: str):
    """The 403 page for a role that may not act: one log line, not the traceback Django's handler writes for
    every PermissionDenied (a refusal is an answer, not an error)."""
    log.info("403 %s %s (%s): %s", request.method, request.path, getattr(request.user, "email", "-"), reason)
    return render(request, "403.html", {"exception": reason}, status=403)


def page_not_found(request, exception=None):
    return render(request, "console/error.html", {
        "status": 404, "title": "Page not found",
        "message": "There is nothing here, or you do not have access to it. Check the address, or pick an "
                   "account from the switcher.",
    }, status=404)


def method_not_allowed(request, allowed: str):
    verbs = " or ".join(v.strip() for v in allowed.split(",") if v.strip()) or "another method"
    return render(request, "console/error.html", {
        "status": 405, "title": "This address is the target of a button",
        "message": f"It answers {verbs} requests only, sent by a button or form on the page before. "
                   "Go back and use the button, or start again from the console.",
    }, status=405)


def server_error(request):
    """The 500 page. No request context and no database: the shell's queries may be what failed. Whether
    someone is signed in is read off the session cookie alone, so a sign-out button can be offered."""
    context = {"status": 500, "title": "Something went wrong",
               "message": "The error has been logged. Try again in a moment.",
               "signed_in": settings.SESSION_COOKIE_NAME in request.COOKIES}
    try:
        context["csrf_value"] = get_token(request)
    except Exception:  # noqa: BLE001 - without a token the sign-out form is left out
        context["signed_in"] = False
    try:
        html = loader.get_template("console/error_bare.html").render(context)
    except Exception:  # noqa: BLE001 - the error page must never fail
        html = '<h1>Server error</h1><p><a href="/">Go to the console</a></p>'
    return HttpResponseServerError(html)
