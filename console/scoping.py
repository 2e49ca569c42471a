"""Who is calling, and what they may reach: the one door every tenant-owned query goes through.

`Principal` is built from a token (API), a session (console) or a product OAuth client. Each app describes
how its models are owned with a `Scope` and restricts its querysets with `restrict_q()` (NetBox's
`restrict()`, reduced to our roles and token kinds), so `console/` never imports the apps above it. Outsiders
never learn that an object exists: selectors filter first and the views turn "not in the queryset" into 404;
a caller who can *see* an object but not change it gets 403.

`rights_for()` answers the same question for one object already in hand, from the same rules, in one query
(none for the owner) whatever the number of actions asked: which controls a page
shows, and whether a lookup of one product or organization by id is a 404, a 403 or the object (its
`restrict()` would build and run two subquery-laden queries; a function call spends ~2 ms less). Each rule
of `restrict_q` has its twin here, and tests/test_structure.py holds the two equal for every caller, target
and action.

A read that deliberately looks past the caller's scope (a device being claimed, a SIM being activated into a
sandbox) is named `unscoped_*`, so it stands out in review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q

from console.roles import PRODUCT_TOKEN_ACTIONS, RANK, Role, at_least, min_role

if TYPE_CHECKING:
    from console.models import AccessToken, OAuthClient, User


@dataclass(frozen=True)
class Principal:
    """The caller: a user (token or console session), a product token, an API user or a customer."""

    kind: str  # "user" | "product" | "api_user" | "customer" | "system"
    user: "User | None" = None
    token: "AccessToken | None" = None
    product_id: int | None = None  # product token, product-level API user, customer
    account_id: int | None = None  # org-level API user
    customer_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    name: str = ""  # what the audit log calls a "system" principal

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

    @classmethod
    def for_client(cls, client: "OAuthClient") -> "Principal":
        """A product OAuth client acting with its own credentials (two-legged calls such as creating shadow
        customers): the same reach as the product token it would be issued, its scope restriction included."""
        return cls(kind="product", product_id=client.product_id, scopes=frozenset(client.restricted_scopes))

    @classmethod
    def system(cls, label: str = "Cyan") -> "Principal":
        """Cyan itself acting on a device's own behalf (onboarding's auto-approve): reaches nothing through
        `restrict_q`, so it can only call services that take their objects already found; audited as `label`."""
        return cls(kind="system", name=label)

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.email
        if self.kind == "product":
            return f"product {self.product_id} token"
        if self.kind == "system":
            return self.name or "Cyan"
        return f"{self.kind} {self.customer_id or ''}".strip()


def roles_at_least(minimum: str) -> list[str]:
    return [r.value for r in Role if RANK[r] >= RANK[Role(minimum)]]


NOTHING = Q(pk__in=[])


@dataclass(frozen=True)
class Scope:
    """How a model is owned, for `restrict_q` and `rights_for`.

    account_field: path from the model to its owning `Account` ("account", "product__account"), or None
        when the model *is* the Account (then self_account=True).
    memberships: (membership model, its FK name to the scoped object, path from the model to that object),
        e.g. (ProductMembership, "product", "pk") and (OrgMembership, "account", "account").
    self_product / self_account: the model is a Product / an Account, so product tokens and API users
        match on its own primary key.
    """

    account_field: str | None
    memberships: tuple[tuple[type, str, str], ...]
    self_product: bool = False
    self_account: bool = False


def token_allows(principal: Principal, action: str | None) -> bool:
    """May a product token or API user take `action` at all (on the one product or org it reaches)?"""
    if action is None:
        return True
    if principal.kind == "product":
        # A client restricted to e.g. customers:create hands out tokens restricted alike.
        return action in PRODUCT_TOKEN_ACTIONS and (not principal.scopes or action in principal.scopes)
    if principal.kind == "api_user":
        return action in principal.scopes
    return False


def restrict_q(principal: Principal, action: str | None, scope: Scope) -> Q:
    """A Q selecting the objects `principal` may take `action` on (None = may see at all)."""
    acct = f"{scope.account_field}__" if scope.account_field else ""
    if principal.kind == "user" and principal.user is not None:
        user = principal.user
        roles = roles_at_least(min_role(action)) if action else [r.value for r in Role]
        # The owner of the owning account (the sandbox's user, or the org's creator) is Administrator (Owner).
        q = Q(**{f"{acct}owner": user})
        for model, fk, outer in scope.memberships:
            q |= Exists(model.objects.filter(**{fk: OuterRef(outer), "user": user, "role__in": roles}))
        return q
    if principal.kind in ("product", "api_user"):
        if not token_allows(principal, action):
            return NOTHING
        if principal.product_id is not None:
            return Q(pk=principal.product_id) if scope.self_product else NOTHING
        if principal.account_id is not None:
            if scope.self_account:
                return Q(pk=principal.account_id)
            if scope.account_field:
                return Q(**{f"{scope.account_field}_id": principal.account_id})
    return NOTHING  # customers reach only their own devices, through the devices app


@dataclass(frozen=True)
class Rights:
    """What one principal may do on one product or organization: whether it may see it at all (`visible`:
    otherwise the object does not exist for it, a 404) and which actions it may take (`may`)."""

    principal: Principal
    role: Role | None  # a person's role (None for tokens and strangers)
    is_owner: bool = False
    reaches: bool = False  # a token's one product or org is this object

    @property
    def visible(self) -> bool:
        """`restrict(principal)` with no action would hold the object."""
        return self.role is not None if self.principal.is_user else self.reaches

    def may(self, action: str) -> bool:
        if self.principal.is_user:
            return at_least(self.role, min_role(action))
        return self.reaches and token_allows(self.principal, action)

    def as_dict(self, *actions: str) -> dict[str, bool]:
        """{"devices_update": True, ...} for templates, which cannot read ':' or '.' in a key."""
        return {a.replace(":", "_").replace(".", "_"): self.may(a) for a in actions}


def _value(obj, path: str):
    """The value at `path` of a loaded object: "pk", or a foreign key's id ("account" -> account_id)."""
    return obj.pk if path == "pk" else getattr(obj, f"{path}_id")


def rights_for(principal: Principal, obj) -> Rights:
    """`principal`'s rights on `obj` (a Product or an Account), by the same rules as `restrict_q`."""
    scope: Scope = type(obj).objects.all().scope()
    if principal.is_user and principal.user is not None:
        user = principal.user
        account = obj if scope.account_field is None else getattr(obj, scope.account_field)
        if account.owner_id == user.pk:
            return Rights(principal, Role.ADMINISTRATOR, is_owner=True)
        # Every seat the person holds on the object, product and organization alike, in one query.
        seats = [model.objects.filter(**{fk: _value(obj, outer), "user": user}).exclude(role=None).order_by()
                 .values_list("role", flat=True) for model, fk, outer in scope.memberships]
        roles = list(seats[0].union(*seats[1:], all=True)) if seats else []
        best = max((Role(r) for r in roles), key=lambda r: RANK[r], default=None)
        return Rights(principal, best)
    reaches = False
    if principal.kind in ("product", "api_user"):
        if principal.product_id is not None:
            reaches = scope.self_product and obj.pk == principal.product_id
        elif principal.account_id is not None:
            reaches = (obj.pk == principal.account_id if scope.self_account
                       else _value(obj, scope.account_field) == principal.account_id)
    return Rights(principal, None, reaches=reaches)
