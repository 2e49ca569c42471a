"""PostgreSQL cannot store or compare text holding a NUL character, so a NUL in an API path or query
would reach the database as an error (a 500). Refuse it at the door, as JSON like every API error."""

from __future__ import annotations

from django.http import JsonResponse

from console.api.errors import error_body


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(("/v1", "/oauth")):
            if "\x00" in request.path:
                return JsonResponse(error_body("not_found", "No such object"), status=404)
            if "\x00" in request.META.get("QUERY_STRING", "") or any(
                "\x00" in value for values in request.GET.lists() for value in values[1]
            ):
                return JsonResponse(error_body("invalid_request", "The query string contains a NUL character"),
                                    status=400)
        return self.get_response(request)
