"""API views for claim codes: /v1/device_claims (a user) and /v1/products/:p/device_claims (a product's
customer, or a team member)."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body, require_user
from devices.api.serializers import claim_code_body
from devices.services.claims import claim_code_create
from products.selectors import customer_product_get, product_get


class ClaimCodeView(APIView):
    """POST /v1/device_claims and /v1/products/:p/device_claims."""

    def post(self, request, product: str | None = None):
        body(request)  # a malformed body is a 400 here as everywhere, even though no field is needed
        p = request.auth
        found = None
        if product is not None:
            found = (customer_product_get(principal=p, ident=product) if p.kind == "customer"
                     else product_get(principal=p, ident=product, action="devices:import"))
        elif p.kind != "customer":
            require_user(p)
        return Response(claim_code_body(claim_code_create(principal=p, product=found)))
