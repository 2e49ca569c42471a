"""A JSON API client like api-js's, and a user token to give it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.test import Client


class Api:
    """A JSON client that sends a Bearer token, like api-js does."""

    def __init__(self, token: str | None = None):
        self.client = Client(raise_request_exception=False)
        self.token = token

    def _headers(self, extra):
        headers = {}
        if self.token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        headers.update(extra)
        return headers

    def call(self, method: str, path: str, data=None, *, form: bool = False, **extra):
        fn = getattr(self.client, method.lower())
        if method.upper() == "GET":
            return fn(path, data or {}, **self._headers(extra))
        if form:
            return fn(path, urlencode(data or {}, doseq=True), content_type="application/x-www-form-urlencoded",
                      **self._headers(extra))
        payload = json.dumps(data) if data is not None else ""
        return fn(path, payload, content_type="application/json", **self._headers(extra))

    def get(self, path, data=None, **extra):
        return self.call("GET", path, data, **extra)

    def post(self, path, data=None, **extra):
        return self.call("POST", path, data, **extra)

    def put(self, path, data=None, **extra):
        return self.call("PUT", path, data, **extra)

    def delete(self, path, data=None, **extra):
        return self.call("DELETE", path, data, **extra)


def user_token(user) -> str:
    from console.services import tokens as token_services
    from console.models import AccessToken

    return token_services.token_issue(kind=AccessToken.Kind.USER, user=user, client_name="test").access_token
