"""API views for device groups: /v1/products/:p/groups[/:name]."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body, no_content
from console.errors import NotFound
from devices.api import inputs
from devices.api.serializers import group_body
from devices.selectors.groups import group_get, product_groups
from devices.services import groups as group_services
from products.models import DeviceGroup
from products.selectors import product_get


class GroupListView(APIView):
    """GET|POST /v1/products/:p/groups."""

    def get(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="groups:list")
        groups = product_groups(found, request.query_params.get("name") or "")
        return Response({"groups": [group_body(g) for g in groups]})

    def post(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="groups:create")
        group = group_services.group_create(principal=request.auth, product=found,
                                            **inputs.group_fields(body(request)))
        return Response({"group": group_body(group)}, status=201)


class GroupDetailView(APIView):
    """GET|PUT|DELETE /v1/products/:p/groups/:name."""

    def _group(self, request, product: str, name: str, action: str) -> DeviceGroup:
        group = group_get(product_get(principal=request.auth, ident=product, action=action), name)
        if group is None:
            raise NotFound(f"Group {name} not found")
        return group

    def get(self, request, product: str, name: str):
        return Response({"group": group_body(self._group(request, product, name, "groups:get"))})

    def put(self, request, product: str, name: str):
        group = group_services.group_update(principal=request.auth,
                                            group=self._group(request, product, name, "groups:update"),
                                            **inputs.group_fields(body(request)))
        return Response({"group": group_body(group)})

    def delete(self, request, product: str, name: str):
        group_services.group_delete(principal=request.auth, group=self._group(request, product, name, "groups:remove"))
        return no_content()
