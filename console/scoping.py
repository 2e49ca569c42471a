"""Who is calling, and what they may reach: the one door every tenant-owned query goes through.

`Principal` is built from a token (API) or a session (console). Each app restricts its own querysets
with `restrict_q()` (NetBox's `restrict()`, reduced to our roles and token kinds), so `console/` never
imports the apps above it. Outsiders never learn that an object exists: selectors filter first and the
views turn "not in the queryset" into 404; a caller who can *see* an object but not change it gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q

from console.roles import PRODUCT_TOKEN_ACTIONS, RANK, Role, min_role

if TYPE_CHECKING:
    from console.models import AccessToken, User


@dataclass(frozen=True)
class Principal:
    """The caller: a user (token or console session), a product token, an API user or a customer."""

    kind: str  # "user" | "product" | "api_user" | "customer"
    user: "User | None" = None
    token: "AccessToken | None" = None
    product_id: int | None = None  # product token, product-level API user, customer
    account_id: int | None = None  # org-level API user
    customer_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_user(cls, user: "User", token: "AccessToken | None" = None) -> "Principal":
        return cls(kind="user", user=user, token=token)

    @classmethod
    def from_token(cls, token: "AccessToken") -> "Principal":
        return cls(
            kind=token.kind,
            user=token.user,
            token=token,
            product_id=token.product_id,
            account_id=token.account_id,
            customer_id=token.customer_id,
            scopes=frozenset(token.scopes or ()),
        )

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.email
        if self.kind == "product":
            return f"product {self.product_id} token"
        return f"{self.kind} {self.customer_id or ''}".strip()


def roles_at_least(minimum: str) -> list[str]:
    return [r.value for r in Role if RANK[r] >= RANK[Role(minimum)]]


NOTHING = Q(pk__in=[])


def restrict_q(
    principal: Principal,
    action: str | None,
    *,
    account_field: str | None,
    memberships: list[tuple[type, str, str]],
    self_product: bool = False,
    self_account: bool = False,
) -> Q:
    """A Q selecting the objects `principal` may take `action` on (None = may see at all).

    account_field: path from the model to its owning `Account` ("account", "product__account"), or None
        when the model *is* the Account (then pass self_account=True).
    memberships: (membership model, its FK name to the scoped object, OuterRef path to that object), e.g.
        (ProductMembership, "product", "pk") and (OrgMembership, "account", "account").
    self_product / self_account: the model is a Product / an Account, so product tokens and API users
        match on its own primary key.
    """
    acct = f"{account_field}__" if account_field else ""
    if principal.kind == "user" and principal.user is not None:
        user = principal.user
        roles = roles_at_least(min_role(action)) if action else [r.value for r in Role]
        # The owner of the owning account (the sandbox's user, or the org's creator) is Administrator (Owner).
        q = Q(**{f"{acct}owner": user})
        for model, fk, outer in memberships:
            q |= Exists(model.objects.filter(**{fk: OuterRef(outer), "user": user, "role__in": roles}))
        return q
    if principal.kind == "product" and principal.product_id is not None:
        if action is not None and (action not in PRODUCT_TOKEN_ACTIONS
                                   or (principal.scopes and action not in principal.scopes)):
            return NOTHING  # a client restricted to e.g. customers:create hands out tokens restricted alike
        if self_product:
            return Q(pk=principal.product_id)
        return NOTHING
    if principal.kind == "api_user":
        if action is not None and action not in principal.scopes:
            return NOTHING
        if principal.product_id is not None and self_product:
            return Q(pk=principal.product_id)
        if principal.account_id is not None:
            if self_account:
                return Q(pk=principal.account_id)
            if account_field:
                return Q(**{f"{account_field}_id": principal.account_id})
        return NOTHING
    return NOTHING  # customers reach only their own devices, through the devices app
