"""API views for a user's own (sandbox) OAuth clients: `/v1/clients...`."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body, no_content, require_user
from console.api.serializers import client_body
from console.models import OAuthClient
from console.services import clients as client_services


class ClientListView(APIView):
    """GET|POST /v1/clients — the caller's own (sandbox) OAuth clients."""

    def get(self, request):
        require_user(request.auth)
        clients = OAuthClient.objects.filter(owner=request.auth.user, product_id__isnull=True)
        return Response({"ok": True, "clients": [client_body(c) for c in clients]})

    def post(self, request):
        require_user(request.auth)
        data = body(request)
        client, secret = client_services.client_create(principal=request.auth, owner=request.auth.user, name=data.get("name"),
                                                type=data.get("type"), redirect_uri=data.get("redirect_uri"),
                                                scope=data.get("scope"))
        return Response({"ok": True, "client": client_body(client, secret)}, status=201)


class ClientDetailView(APIView):
    """PUT|DELETE /v1/clients/:clientId."""

    def _client(self, request, client_id):
        require_user(request.auth)
        return client_services.client_get_for_owner(client_id=client_id, owner=request.auth.user)

    def put(self, request, client_id: str):
        data = body(request)
        client = client_services.client_update(principal=request.auth, client=self._client(request, client_id),
                                        name=data.get("name"), scope=data.get("scope"))
        return Response({"ok": True, "client": client_body(client)})

    def delete(self, request, client_id: str):
        client_services.client_delete(principal=request.auth, client=self._client(request, client_id))
        return no_content()
