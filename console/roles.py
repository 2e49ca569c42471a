"""Team roles and the minimum role each API action needs (particle-api.md §9).

Actions are Particle's scope names (`devices:list`, `teams.users:invite`, ...), so one table answers
both "may this Developer do X" and "does this API user's scope list allow X".
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "View-only"
    SUPPORT = "support", "Support"
    DEVELOPER = "developer", "Developer"
    ADMINISTRATOR = "administrator", "Administrator"


RANK = {Role.VIEWER: 1, Role.SUPPORT: 2, Role.DEVELOPER: 3, Role.ADMINISTRATOR: 4}

# Particle shows role ids as 24-hex strings; its docs give ...02 for Administrator. The rest are ours.
ROLE_IDS = {
    Role.ADMINISTRATOR: "000000000000000000000002",
    Role.DEVELOPER: "000000000000000000000003",
    Role.VIEWER: "000000000000000000000004",
    Role.SUPPORT: "000000000000000000000005",
}
OWNER_LABEL = "Administrator (Owner)"


def parse_role(value: object) -> Role | None:
    """Accept a role by Particle name ("View-only"), our value ("viewer") or Particle role id."""
    if not isinstance(value, str):
        return None
    wanted = value.strip().lower().replace("_", "-")
    for role in Role:
        if wanted in (role.value, role.label.lower(), ROLE_IDS[role]):
            return role
    if wanted in ("view only", "viewonly", "view-only"):
        return Role.VIEWER
    return None


def at_least(role: str | None, minimum: str) -> bool:
    return role is not None and RANK[Role(role)] >= RANK[Role(minimum)]


# The minimum role for each action. An action missing here is a programming error, not a default.
_V, _S, _D, _A = Role.VIEWER, Role.SUPPORT, Role.DEVELOPER, Role.ADMINISTRATOR
ACTION_MIN_ROLE: dict[str, Role] = {
    "products:list": _V,
    "products:get": _V,
    "products:update": _A,  # product settings
    "products:create": _D,  # at org level (particle-api.md §9)
    "teams.users:list": _V,
    "teams.users:invite": _A,
    "teams.users:update": _A,
    "teams.users:remove": _A,
    "clients:list": _V,
    "clients:create": _D,
    "clients:update": _D,
    "clients:remove": _D,
    "orgs:get": _V,
    "devices:list": _V,
    "devices:get": _V,
    "devices:import": _D,
    "devices:update": _D,
    "devices:remove": _D,
    "devices:release": _D,
    "devices:ping": _S,
    "devices.variable:get": _S,
    "devices.function:call": _S,
    "groups:list": _V,
    "groups:get": _V,
    "groups:create": _D,
    "groups:update": _D,
    "groups:remove": _D,
    "sims:list": _V,
    "sims:get": _V,
    "sims:import": _D,
    "sims:update": _S,
    "sims:remove": _D,
    "sims.usage:get": _V,
    "sims.status:get": _V,
    "customers:list": _V,
    "customers:create": _D,
    "customers:update": _D,
    "customers:remove": _D,
    "events:get": _V,
    "events:send": _D,
    "integrations:list": _V,
    "integrations:get": _V,
    "integrations:create": _D,
    "integrations:update": _D,
    "integrations:remove": _D,
    "integrations:test": _D,
    "firmware:list": _V,
    "firmware:get": _V,
    "firmware:create": _D,
    "firmware:update": _D,
    "firmware:release": _D,
    "firmware:remove": _D,
    "service_agreements:list": _A,
}

# Actions a product bearer token (product OAuth client + client_credentials) may take on its product:
# a Developer's device, fleet and customer work — but not the team (whose emails it must not read) nor the
# OAuth clients (a leaked token could mint a fresh client that outlives its own revocation).
PRODUCT_TOKEN_ACTIONS = frozenset(
    a for a, r in ACTION_MIN_ROLE.items()
    if RANK[r] <= RANK[_D] and not a.startswith("teams.") and a not in ("clients:create", "clients:update", "clients:remove")
)

# Scopes an API user may be given (particle-api.md §4). Unknown scopes are refused at creation.
KNOWN_SCOPES = frozenset(ACTION_MIN_ROLE) | frozenset(
    {
        "devices.diagnostics:get",
        "devices.diagnostics:update",
        "devices.diagnostics.metadata:get",
        "devices.diagnostics.summary:get",
        "groups.impact:get",
        "firmware.binary:get",
        "configuration:get",
        "locations:get",
        "metrics.online:get",
        "metrics.events:get",
        "metrics.integrations:get",
        "metrics.functions:get",
        "metrics.variables:get",
        "service_agreements.usage_summary:get",
        "service_agreements.pricing_terms:get",
        "service_agreements.usage_reports:get",
        "service_agreements.usage_reports:create",
        "service_agreements.notifications:list",
    }
)


def min_role(action: str) -> Role:
    return ACTION_MIN_ROLE[action]


def role_actions(role: Role) -> frozenset[str]:
    """Every action a person with `role` may take: what granting the role hands out."""
    return frozenset(a for a, minimum in ACTION_MIN_ROLE.items() if RANK[minimum] <= RANK[role])
