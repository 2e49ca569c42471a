from django.shortcuts import render


def page_not_found(request, exception=None):
    return render(request, "console/error.html", {"status": 404, "title": "Not found",
                                                  "message": "There is nothing here, or you do not have access to it."},
                  status=404)


def server_error(request):
    from django.template import loader
    from django.http import HttpResponseServerError

    try:
        html = loader.get_template("console/error.html").render(
            {"status": 500, "title": "Something went wrong", "message": "The error has been logged."})
    except Exception:  # noqa: BLE001 - the error page must never fail
        html = "<h1>Server error</h1>"
    return HttpResponseServerError(html)
