"""Top-level routes: the API (Particle paths), the OpenAPI schema, the admin site and the console."""

from django.contrib import admin
from django.urls import include, path
from django.views.defaults import bad_request, permission_denied
from csp.decorators import csp_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from console.api.errors import json_bad_request, json_forbidden, json_not_found, json_server_error
from console.web.errors import page_not_found, server_error

api_patterns = [
    path("", include("console.api.urls")),
    path("", include("products.api.urls")),
    path("", include("integrations.api.urls")),
    path("", include("devices.api.urls")),
]

urlpatterns = [
    *api_patterns,
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The two documentation viewers start themselves with inline scripts: outside the console's policy.
    path("api/docs/", csp_exempt()(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc/", csp_exempt()(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    path("admin/", admin.site.urls),
    path("", include("integrations.web.urls")),  # before the console's: "products/<slug>/integrations/..."
    path("", include("console.web.urls")),
]


def handler404(request, exception=None):
    if request.path.startswith(("/v1", "/oauth")):
        return json_not_found(request, exception)
    return page_not_found(request, exception)


def handler400(request, exception=None):
    # e.g. RequestDataTooBig: Django answers before any view runs, so the API's JSON must be made here.
    if request.path.startswith(("/v1", "/oauth")):
        return json_bad_request(request, exception)
    return bad_request(request, exception)


def handler403(request, exception=None):
    if request.path.startswith(("/v1", "/oauth")):
        return json_forbidden(request, exception)
    return permission_denied(request, exception)


def handler500(request):
    if request.path.startswith(("/v1", "/oauth")):
        return json_server_error(request)
    return server_error(request)
