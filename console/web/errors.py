"""The console's error pages. 403 comes from Django's default handler, which renders templates/403.html."""

from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template import loader


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
