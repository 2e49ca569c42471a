"""Every error under /oauth and /v1 is JSON: `{"error", "error_description"}`, Particle's shape."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from console.errors import ServiceError

log = logging.getLogger(__name__)


def error_body(error: str, description: str, **extra) -> dict:
    return {"error": error, "error_description": description, **extra}


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        msg = _first_message(value)
        return msg if key == "non_field_errors" else f"{key}: {msg}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def particle_exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        set_rollback()
        extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
        if exc.field:
            extra.setdefault("field", exc.field)
        payload = error_body(exc.code, exc.description, **extra)
        if getattr(exc, "ok_false", False):
            payload = {"ok": False, **payload}  # device operations: Particle's `{"ok": false, "error": ...}`
        response = Response(payload, status=exc.status)
        if "retry_after" in exc.extra:
            response["Retry-After"] = str(exc.extra["retry_after"])
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        desc = "The access token was not found" if isinstance(exc, exceptions.NotAuthenticated) else str(exc.detail)
        return Response(error_body("invalid_token", desc), status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="Cyan"'})
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        code = {
            exceptions.ParseError: "invalid_request",
            exceptions.ValidationError: "invalid_request",
            exceptions.PermissionDenied: "forbidden",
            exceptions.NotFound: "not_found",
            exceptions.MethodNotAllowed: "method_not_allowed",
            exceptions.UnsupportedMediaType: "unsupported_media_type",
            exceptions.Throttled: "rate_limited",
            exceptions.NotAcceptable: "not_acceptable",
        }.get(type(exc), "invalid_request")
        description = _first_message(exc.detail)
        if isinstance(exc, exceptions.ParseError):
            description = f"The request body could not be parsed: {description}"
        return Response(error_body(code, description), status=exc.status_code)
    return None  # unexpected: Django's handler500 renders it (as JSON under /v1)


def json_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", f"No route {request.method} {request.path}"), status=404)


def json_bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body("request_too_large", "The request body is larger than 16 MB; upload the "
                                       "list as a file or split it"), status=413)
    if isinstance(exception, TooManyFieldsSent):
        return JsonResponse(error_body("invalid_request", "Too many form fields; send a JSON list or a file"),
                            status=400)
    return JsonResponse(error_body("invalid_request", "The request could not be read"), status=400)


def json_forbidden(request, exception=None):
    return JsonResponse(error_body("forbidden", "You may not do this"), status=403)


def json_server_error(request):
    return JsonResponse(error_body("server_error", "Something went wrong on our side; it has been logged."),
                        status=500)
