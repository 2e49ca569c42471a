"""OpenAPI generation for plain APIViews: our views render Particle's shapes by hand, so document them as
JSON objects, tag them by resource, and take descriptions from the docstrings."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes


class ParticleAutoSchema(AutoSchema):
    def _get_serializer(self):
        if not hasattr(self.view, "get_serializer") and not getattr(self.view, "serializer_class", None):
            return None
        return super()._get_serializer()

    def get_request_serializer(self):
        found = super().get_request_serializer()
        if found is None and self.method in ("POST", "PUT", "PATCH"):
            return OpenApiTypes.OBJECT
        return found

    def get_response_serializers(self):
        found = super().get_response_serializers()
        return OpenApiTypes.OBJECT if found is None else found

    def get_operation_id(self):
        # Spell path parameters into the id, so /v1/orgs and /v1/orgs/{org} do not collide.
        parts = [p.strip("{}").replace("-", "_") for p in self.path.strip("/").split("/") if p]
        return "_".join(parts + [self.method.lower()])

    def get_tags(self):
        parts = [p for p in self.path.strip("/").split("/") if p and not p.startswith("{")]
        if parts and parts[0] == "oauth":
            return ["auth"]
        parts = parts[1:] if parts and parts[0] == "v1" else parts
        if not parts:
            return ["other"]
        if parts[0] in ("user", "orgs", "products") and len(parts) > 1:
            return [parts[-1]] if parts[-1] in ("team", "clients", "products") else [parts[0]]
        return [parts[0]]


from drf_spectacular.extensions import OpenApiAuthenticationExtension  # noqa: E402


class ParticleTokenScheme(OpenApiAuthenticationExtension):
    target_class = "console.api.authentication.ParticleTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A token from POST /oauth/token (also accepted as ?access_token= or a form field)."}
