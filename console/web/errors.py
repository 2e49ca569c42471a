"""The console's error pages: 403 (templates/403.html, also Django's handler's), 404, 405 and 500."""

import logging

from django.http import HttpResponseServerError
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


def server_error(request):
    try:
        # No request context: the shell's queries are what may have failed.
        html = loader.get_template("console/error_bare.html").render(
            {"status": 500, "title": "Something went wrong",
             "message": "The error has been logged. Try again in a moment."})
    except Exception:  # noqa: BLE001 - the error page must never fail
        html = "<h1>Server error</h1>"
    return HttpResponseServerError(html)
