"""API views for products, product teams and product OAuth clients."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from console import validation
from console.api.base import body, no_content, require_user
from console.api.serializers import client_body
from console.api.teams import TeamMemberViewBase, TeamTokenViewBase, TeamViewBase
from console.errors import ValidationFailed
from console.models import Account, OAuthClient
from console.selectors import org_get
from console.services import clients as client_services
from console.services.users import sandbox_of
from products import selectors, services
from products.api.serializers import product_body


def _settings(settings: object) -> dict:
    """`settings: {quarantine, location: {opt_in}}` as the services' keyword arguments."""
    if not isinstance(settings, dict):
        raise ValidationFailed("settings must be an object", field="settings")
    out = {}
    if "quarantine" in settings:
        out["quarantine"] = validation.boolean(settings["quarantine"], field="settings.quarantine", default=False)
    location = settings.get("location")
    if location is not None:
        if not isinstance(location, dict):
            raise ValidationFailed("settings.location must be an object", field="settings")
        if "opt_in" in location:
            out["location_opt_in"] = validation.boolean(location["opt_in"], field="settings.location.opt_in",
                                                        default=False)
    return out


def _product_fields(request, keys: tuple[str, ...]) -> dict:
    """A product body, flat or in Particle's `{"product": {...}}` envelope."""
    data = body(request)
    if isinstance(data.get("product"), dict):
        data = data["product"]
    out = {k: data[k] for k in keys if k in data}
    if "settings" in data:
        out.update(_settings(data["settings"]))
    return out


def _create(request, account: Account):
    fields = _product_fields(request, ("name", "platform_id", "description", "slug"))
    product = services.product_create(principal=request.auth, account=account, name=fields.pop("name", None),
                                      platform_id=fields.pop("platform_id", None), **fields)
    return Response({"product": product_body(product)}, status=201)


class ProductListView(APIView):
    """GET /v1/products — every product the caller can reach (sandbox and organizations)."""

    @extend_schema(summary="List products you can reach", tags=["products"])
    def get(self, request):
        products = selectors.product_list(principal=request.auth)
        return Response({"products": [product_body(p) for p in products]})


class UserProductListView(APIView):
    """GET|POST /v1/user/products — sandbox products (owned, or shared with you by their owner)."""

    @extend_schema(summary="List sandbox products", tags=["products"])
    def get(self, request):
        products = selectors.product_list(principal=request.auth).filter(account__kind=Account.Kind.SANDBOX)
        return Response({"products": [product_body(p) for p in products]})

    @extend_schema(summary="Create a product in your sandbox", tags=["products"],
                   description="Body `{product: {name, platform_id, description?, slug?, settings?}}` or the same flat.")
    def post(self, request):
        require_user(request.auth)
        return _create(request, sandbox_of(request.auth.user))


class OrgProductListView(APIView):
    """GET|POST /v1/orgs/:org/products."""

    @extend_schema(summary="List an organization's products", tags=["products"])
    def get(self, request, org: str):
        account = org_get(principal=request.auth, ident=org)
        products = selectors.product_list(principal=request.auth, account=account)
        return Response({"products": [product_body(p) for p in products]})

    @extend_schema(summary="Create a product in an organization (Developer or above)", tags=["products"])
    def post(self, request, org: str):
        account = org_get(principal=request.auth, ident=org, action="products:create")
        return _create(request, account)


class ProductDetailView(APIView):
    """GET|PUT /v1/products/:p (id or slug). PUT changes name, description and settings (Administrator)."""

    @extend_schema(summary="Get a product", tags=["products"])
    def get(self, request, product: str):
        found = selectors.product_get(principal=request.auth, ident=product, action="products:get")
        return Response({"product": product_body(found)})

    @extend_schema(summary="Update a product's name, description or settings", tags=["products"])
    def put(self, request, product: str):
        found = selectors.product_get(principal=request.auth, ident=product, action="products:update")
        updated = services.product_update(principal=request.auth, product=found,
                                          **_product_fields(request, ("name", "description", "platform_id")))
        return Response({"product": product_body(updated)})


class ProductTeamMixin:
    def team(self, request, action: str, product: str, **kwargs):
        found = selectors.product_get(principal=request.auth, ident=product, action=action)
        return services.product_team(found)


class ProductTeamView(ProductTeamMixin, TeamViewBase):
    pass


class ProductTeamMemberView(ProductTeamMixin, TeamMemberViewBase):
    pass


class ProductTeamTokenView(ProductTeamMixin, TeamTokenViewBase):
    pass


class ProductClientListView(APIView):
    """GET|POST /v1/products/:p/clients."""

    def get(self, request, product: str):
        found = selectors.product_get(principal=request.auth, ident=product, action="clients:list")
        clients = OAuthClient.objects.filter(product_id=found.pk)
        return Response({"ok": True, "clients": [client_body(c) for c in clients]})

    def post(self, request, product: str):
        found = selectors.product_get(principal=request.auth, ident=product, action="clients:create")
        data = body(request)
        client, secret = client_services.client_create(
            principal=request.auth, product_id=found.pk, product_slug=found.slug, name=data.get("name"),
            type=data.get("type"), redirect_uri=data.get("redirect_uri"), scope=data.get("scope"))
        return Response({"ok": True, "client": client_body(client, secret)}, status=201)


class ProductClientDetailView(APIView):
    """PUT|DELETE /v1/products/:p/clients/:clientId."""

    def _client(self, request, product: str, client_id: str, action: str):
        found = selectors.product_get(principal=request.auth, ident=product, action=action)
        return client_services.client_get_for_owner(client_id=client_id, product_id=found.pk)

    def put(self, request, product: str, client_id: str):
        data = body(request)
        client = client_services.client_update(principal=request.auth,
                                               client=self._client(request, product, client_id, "clients:update"),
                                               name=data.get("name"), scope=data.get("scope"))
        return Response({"ok": True, "client": client_body(client)})

    def delete(self, request, product: str, client_id: str):
        client_services.client_delete(principal=request.auth,
                                      client=self._client(request, product, client_id, "clients:remove"))
        return no_content()
