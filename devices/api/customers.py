"""API views for a product's customers (particle-api.md §8)."""

from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console import validation
from console.api.authentication import ParticleTokenAuthentication
from console.api.base import body, client_credentials
from console.api.serializers import issued_token_body
from console.pagination import paginate
from console.scoping import Principal
from console.services import clients as client_services
from devices.api.serializers import customer_list_body
from devices.selectors import customers as customer_selectors
from devices.services import customers as customer_services
from products.selectors import product_get


def _token_principal(request) -> Principal:
    found = ParticleTokenAuthentication().authenticate(request)
    if not found:
        raise NotAuthenticated()
    return found[1]


class CustomerListView(APIView):
    """GET /v1/products/:p/customers; POST creates a customer with a team token or the product's client."""

    authentication_classes: list = []  # POST accepts client credentials instead of a token
    permission_classes = [AllowAny]

    def get(self, request, product: str):
        found = product_get(principal=_token_principal(request), ident=product, action="customers:list")
        page, per_page = validation.page_params(request.query_params)
        customers = paginate(customer_selectors.product_customers(found), page=page, per_page=per_page)
        devices = customer_selectors.devices_of_customers(customers.rows)
        return Response({**customer_list_body(customers.rows, devices), "meta": customers.meta()})

    def post(self, request, product: str):
        data = body(request)
        client_id, client_secret = client_credentials(request, data)
        client = None
        if client_id:  # two-legged: the product's client creates a (shadow) customer with its own credentials
            client = client_services.product_client_authenticate(
                client_id=client_id, client_secret=client_secret,
                refusal="Only a product's OAuth client can create its customers")
        principal = Principal.for_client(client) if client is not None else _token_principal(request)
        found = product_get(principal=principal, ident=product, action="customers:create")
        _, issued = customer_services.customer_create(
            principal=principal, product=found, email=data.get("email"), password=data.get("password"),
            no_password=validation.boolean(data.get("no_password"), field="no_password", default=False),
            client=client)
        return Response(issued_token_body(issued), status=201)


class CustomerDetailView(APIView):
    """PUT|DELETE /v1/products/:p/customers/:email."""

    def put(self, request, product: str, email: str):
        found = product_get(principal=request.auth, ident=product, action="customers:update")
        customer = customer_selectors.customer_get(product=found, email=email)
        customer_services.customer_set_password(principal=request.auth, customer=customer,
                                                password=body(request).get("password"))
        return Response({"ok": True})

    def delete(self, request, product: str, email: str):
        found = product_get(principal=request.auth, ident=product, action="customers:remove")
        customer_services.customer_delete(principal=request.auth,
                                          customer=customer_selectors.customer_get(product=found, email=email))
        return Response({"ok": True})
