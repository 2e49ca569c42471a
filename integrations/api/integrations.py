"""API views for integrations: /v1/integrations, /v1/products/:p/integrations and the legacy webhook forms
/v1/webhooks, /v1/products/:p/webhooks (particle-api.md §14, Part B §1.7, §3.3).

A sandbox hook is the token's user's: other token kinds get Particle's 400 `unauthorized` on the sandbox form.
A product hook is reached through `product_get` with the route's action, so outsiders get 404 and View-only
may only read. The legacy form differs in its replies only: `ok:true` on create and delete (CLI 3.43.1's
`webhook delete` waits forever on a 204), and it makes webhooks only.
"""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body, no_content, require_user
from console.errors import ValidationFailed
from integrations import delivery, logs, selectors, services, validation
from integrations.api.serializers import created_body, delivery_body, integration_body
from integrations.models import Integration
from integrations.selectors import dead_letter_count, integration_days
from products.selectors import product_get


def _owner(request, product: str | None, action: str) -> dict:
    """{"product": p} or {"user": u}: where the hook lives, after the door said yes to `action`."""
    if product is not None:
        return {"product": product_get(principal=request.auth, ident=product, action=action)}
    require_user(request.auth)
    return {"user": request.auth.user}


def _hook(request, product: str | None, integration_id: str, action: str) -> Integration:
    owner = _owner(request, product, action)
    return selectors.integration_get(principal=request.auth, integration_id=integration_id,
                                     product=owner.get("product"))


class IntegrationListView(APIView):
    """GET|POST /v1/integrations, /v1/products/:p/integrations (and, with legacy=True, …/webhooks)."""

    legacy = False

    def get(self, request, product: str | None = None):
        owner = _owner(request, product, "integrations:list")
        return Response([integration_body(h) for h in selectors.integrations_of(**owner)])

    def post(self, request, product: str | None = None):
        data = body(request)
        if self.legacy:
            data = {**data, "integration_type": data.get("integration_type") or "Webhook"}
        owner = _owner(request, product, "integrations:create")  # the door first: an outsider learns nothing
        validation.integration_type(data)
        fields = validation.webhook_fields(data)
        hook = services.integration_create(principal=request.auth, fields=fields, **owner)
        return Response(created_body(hook, hook.signing_secret), status=201)


class IntegrationDetailView(APIView):
    """GET|PUT|DELETE …/integrations/:id (legacy: GET|DELETE …/webhooks/:id)."""

    legacy = False

    def get(self, request, integration_id: str, product: str | None = None):
        hook = _hook(request, product, integration_id, "integrations:get")
        recent = logs.logs_read(hook.id)
        out = integration_body(hook)
        out.update(logs=recent["successes"] + recent["errors"], errors=recent["errors"],
                   counters=integration_days(hook), dead_letters=dead_letter_count(hook))
        return Response({"integration": out})

    def put(self, request, integration_id: str, product: str | None = None):
        hook = _hook(request, product, integration_id, "integrations:update")
        data = body(request)
        validation.integration_type(data, default=hook.integration_type)
        hook = services.integration_replace(principal=request.auth, integration=hook,
                                            fields=validation.webhook_fields(data))
        return Response({"integration": integration_body(hook)})

    def delete(self, request, integration_id: str, product: str | None = None):
        hook = _hook(request, product, integration_id, "integrations:remove")
        services.integration_delete(principal=request.auth, integration=hook)
        return Response({"ok": True}) if self.legacy else no_content()


class LegacyWebhookListView(IntegrationListView):
    legacy = True


class LegacyWebhookDetailView(IntegrationDetailView):
    legacy = True
    http_method_names = ["get", "delete", "options"]


class IntegrationTestView(APIView):
    """POST …/integrations/:id/test: send a test event to the receiver now and say how it went."""

    def post(self, request, integration_id: str, product: str | None = None):
        hook = _hook(request, product, integration_id, "integrations:test")
        return Response(delivery.integration_test(hook))


class IntegrationSecretView(APIView):
    """POST …/integrations/:id/rotate_secret: a new signing secret, shown once (Cyan's own route)."""

    def post(self, request, integration_id: str, product: str | None = None):
        hook = _hook(request, product, integration_id, "integrations:update")
        secret = services.integration_rotate_secret(principal=request.auth, integration=hook)
        return Response({"ok": True, "id": hook.id, "signing_secret": secret})


class DeadLetterListView(APIView):
    """GET …/integrations/:id/dead_letters: deliveries whose retries ran out, newest first (Cyan's own)."""

    def get(self, request, integration_id: str, product: str | None = None):
        hook = _hook(request, product, integration_id, "integrations:get")
        rows = selectors.dead_letters(hook)
        return Response({"dead_letters": [delivery_body(r) for r in rows], "total": dead_letter_count(hook)})


class DeadLetterReplayView(APIView):
    """POST …/integrations/:id/dead_letters/replay `{ids?: [...]}`: send them again (all when no ids)."""

    def post(self, request, integration_id: str, product: str | None = None):
        hook = _hook(request, product, integration_id, "integrations:update")
        ids = body(request).get("ids")
        if ids is not None and not isinstance(ids, list):
            raise ValidationFailed("ids must be a list of dead-letter ids", field="ids")
        count = services.dead_letters_replay(principal=request.auth, integration=hook, ids=ids)
        return Response({"ok": True, "replayed": count})
