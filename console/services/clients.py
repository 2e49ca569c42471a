"""OAuth clients: the built-in public ones, registered sandbox and product clients, and authenticating
a client by its credentials."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.text import slugify

from console import validation
from console.errors import InvalidClient, NotFound, ValidationFailed
from console.models import OAuthClient, User, hash_secret, new_token
from console.scoping import Principal
from console.services.audit import audit_record

# Clients that need no registration (particle-api.md Part B §0.3): any of them may use the password grant.
BUILTIN_CLIENTS = {
    "particle": "particle",
    "particle-api": "particle-api",
    "particle-cli": "particle-cli",
    "CLI2": "client_secret_here",
    "user": "client_secret_here",
    "cyan-console": "",
}


def client_authenticate(*, client_id: str, client_secret: str) -> OAuthClient | None:
    """A registered client whose secret matches, None for a built-in public client; else InvalidClient."""
    if client_id in BUILTIN_CLIENTS:
        return None
    client = OAuthClient.objects.filter(client_id=client_id).first()
    if client is None or not client_secret or not client.check_secret(client_secret):
        raise InvalidClient("Invalid or missing client credentials")
    return client


def product_client_authenticate(*, client_id: str, client_secret: str, refusal: str) -> OAuthClient | None:
    """A product OAuth client by its credentials, for two-legged calls; None for a built-in public client
    (the caller then needs a token); InvalidClient for bad credentials; `refusal` for a sandbox client."""
    client = client_authenticate(client_id=client_id, client_secret=client_secret)
    if client is not None and client.product_id is None:
        raise ValidationFailed(refusal, code="unauthorized_client")
    return client


CLIENT_SCOPES = {"", "customers:create", "*:*", "none"}


def _client_fields(*, name: object, type_: object, redirect_uri: object, scope: object, partial: bool) -> dict:
    out: dict = {}
    if name is not None or not partial:
        out["name"] = validation.text(name, field="name", max_length=200)
    if type_ is not None or not partial:
        if type_ not in (OAuthClient.Type.INSTALLED, OAuthClient.Type.WEB):
            raise ValidationFailed("type must be 'installed' or 'web'", field="type")
        out["type"] = type_
    if redirect_uri not in (None, ""):
        redirect_uri = validation.text(redirect_uri, field="redirect_uri", max_length=200)
        try:
            URLValidator()(redirect_uri)
        except DjangoValidationError:
            raise ValidationFailed("redirect_uri must be a URL", field="redirect_uri")
        out["redirect_uri"] = str(redirect_uri)
    if not partial and out.get("type") == OAuthClient.Type.WEB and not out.get("redirect_uri"):
        raise ValidationFailed("redirect_uri is required for web clients", field="redirect_uri")
    if scope is not None:
        scope = " ".join(validation.text(scope, field="scope", max_length=200, required=False).split())
        if any(s not in CLIENT_SCOPES for s in scope.split()):
            raise ValidationFailed("scope may be 'customers:create', '*:*' or 'none'", field="scope")
        out["scope"] = "" if scope == "none" else scope
    return out


@transaction.atomic
def client_create(*, principal: Principal, name: object, type: object, redirect_uri: object = None,
                  scope: object = None, owner: User | None = None, product_id: int | None = None,
                  product_slug: str = "") -> tuple[OAuthClient, str]:
    """Create a client; the secret is returned here and never again."""
    fields = _client_fields(name=name, type_=type, redirect_uri=redirect_uri, scope=scope, partial=False)
    base = slugify(product_slug or fields["name"])[:60] or "client"

    client_id = f"{base}-{secrets.token_hex(4)}"
    secret = new_token()
    client = OAuthClient.objects.create(client_id=client_id, secret_hash=hash_secret(secret), owner=owner,
                                        product_id=product_id,
                                        created_by=principal.user if principal.user and not principal.user.is_programmatic else None,
                                        **fields)
    audit_record(principal=principal, action="client.create", target=client_id, product_id=product_id)
    return client, secret


@transaction.atomic
def client_update(*, principal: Principal, client: OAuthClient, name: object = None, scope: object = None) -> OAuthClient:
    fields = _client_fields(name=name, type_=None, redirect_uri=None, scope=scope, partial=True)
    for key, value in fields.items():
        setattr(client, key, value)
    client.save()
    audit_record(principal=principal, action="client.update", target=client.client_id, product_id=client.product_id)
    return client


@transaction.atomic
def client_delete(*, principal: Principal, client: OAuthClient) -> None:
    audit_record(principal=principal, action="client.delete", target=client.client_id, product_id=client.product_id)
    client.delete()  # its tokens go with it (FK cascade)


def client_get_for_owner(*, client_id: str, owner: User | None = None, product_id: int | None = None) -> OAuthClient:
    qs = OAuthClient.objects.filter(client_id=client_id)
    qs = qs.filter(owner=owner, product_id__isnull=True) if owner is not None else qs.filter(product_id=product_id)
    client = qs.first()
    if client is None:
        raise NotFound(f"Client {client_id} not found")
    return client


__all__ = [name for name in dir() if not name.startswith("_")]
