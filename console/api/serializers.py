"""Output shapes in Particle's field names. Input is validated by the services, which own the rules."""

from __future__ import annotations

from datetime import timezone as dt_timezone


from console.models import AccessToken, Account, OAuthClient, User


def iso(dt) -> str | None:
    """ISO-8601 with milliseconds and Z, as Particle writes timestamps."""
    if dt is None:
        return None
    return dt.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def user_body(user: User, *, wifi_devices: int = 0, cellular_devices: int = 0, mfa_enabled: bool = False) -> dict:
    return {
        "username": user.email,
        "subscription_ids": [],
        "account_info": {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "business_account": user.business_account,
            "company_name": user.company_name,
        },
        "mfa": {"enabled": mfa_enabled},
        "scim_provisioned": False,
        "no_password": not user.has_usable_password(),
        "wifi_device_count": wifi_devices,
        "cellular_device_count": cellular_devices,
    }


def issued_token_body(issued) -> dict:
    """/oauth/token's answer (and a new customer's): `{token_type, access_token, expires_in, refresh_token?}`."""
    out = {"token_type": "bearer", "access_token": issued.access_token, "expires_in": issued.expires_in}
    if issued.refresh_token:
        out["refresh_token"] = issued.refresh_token
    return out


def client_body(client: OAuthClient, secret: str | None = None) -> dict:
    out = {"id": client.client_id, "name": client.name, "type": client.type}
    if client.redirect_uri:
        out["redirect_uri"] = client.redirect_uri
    if client.scope:
        out["scope"] = client.scope
    if client.product_id is not None:
        out["product_id"] = client.product_id
    if secret is not None:
        out["secret"] = secret
    return out


def token_body(token: AccessToken) -> dict:
    return {
        "id": token.pk,
        "token": f"{token.prefix}…",
        "expires_at": iso(token.expires_at),
        "client": token.client_label,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
    }


def org_body(org: Account) -> dict:
    return {"id": str(org.pk), "name": org.name, "slug": org.slug}
