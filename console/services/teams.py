"""Teams: one implementation for organization teams and product teams (particle-api.md §4, §9).

A `Team` wraps the scoped object (an org `Account` or a `Product`) and its membership model; products
build theirs in `products.services.product_team`. People are invited by email with a role; API users
are programmatic `User` rows with scopes and exactly one token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils.text import slugify

from console import validation
from console.errors import Conflict, Forbidden, NotFound, ValidationFailed
from console.models import AccessToken, Account, MembershipBase, OrgMembership, User
from console.queue import enqueue_on_commit
from console.roles import KNOWN_SCOPES, OWNER_LABEL, ROLE_IDS, Role, parse_role, role_actions
from console.scoping import Principal
from console.services.audit import audit_record
from console.services.tokens import token_issue

ORG_INVITE_TASK = "console.send_org_invite"


@dataclass
class Team:
    """A team of an organization or of a product."""

    kind: str  # "organization" | "product"
    target: Any  # Account (org) or Product
    membership_model: type[MembershipBase]
    fk: str  # the membership's FK name to target: "account" or "product"
    owner: User  # Administrator (Owner): cannot be changed or removed
    slug: str
    product_id: int | None = None
    account: Account | None = None  # the owning Account, for audit and org API users
    invite_task: str = ORG_INVITE_TASK  # the Celery task that mails a new member, by name (`console.queue`)

    def memberships(self):
        return self.membership_model.objects.filter(**{self.fk: self.target}).select_related("user")

    def seat(self, username: str) -> MembershipBase:
        seat = self.memberships().filter(user__email=(username or "").strip().lower()).first()
        if seat is None:
            raise NotFound(f"{username} is not a member of this team")
        return seat

    def require(self, principal: Principal | None, action: str) -> None:
        """Defence in depth: every door checks access first, but a team service refuses on its own too."""
        if principal is None:
            return  # support staff (admin) and system tasks
        if not type(self.target).objects.restrict(principal, action).filter(pk=self.target.pk).exists():
            raise Forbidden("You may not change this team")

    def _audit(self, principal: Principal, action: str, target: str, data: dict | None = None) -> None:
        audit_record(principal=principal, action=f"team.{action}", target=target, account=self.account,
                     product_id=self.product_id, data=data)


def team_entries(team: Team) -> list[dict]:
    """GET .../team, in Particle's shape: people first (owner leading), then API users."""
    people, programs = [], []
    seats = list(team.memberships().order_by("created_at"))
    owner_listed = any(s.user_id == team.owner.pk for s in seats)
    if not owner_listed:
        people.append(_person(team, team.owner, Role.ADMINISTRATOR))
    for seat in seats:
        if seat.user.is_programmatic:
            entry = {"username": seat.user.email, "friendly_name": seat.user.friendly_name,
                     "scopes": list(seat.scopes), "is_programmatic": True}
            if team.product_id is not None:
                entry["product_id"] = team.product_id
            else:
                entry["org_id"] = team.account.pk if team.account else None
            programs.append(entry)
        else:
            people.append(_person(team, seat.user, Role(seat.role) if seat.role else Role.VIEWER))
    people.sort(key=lambda e: not e.get("is_owner"))
    return people + programs


def _person(team: Team, user: User, role: Role) -> dict:
    is_owner = user.pk == team.owner.pk
    return {
        "_id": f"{user.pk:024x}",
        "username": user.email,
        "role": {"id": ROLE_IDS[Role.ADMINISTRATOR if is_owner else role],
                 "name": (Role.ADMINISTRATOR if is_owner else role).label},
        "role_label": OWNER_LABEL if is_owner else role.label,
        "is_owner": is_owner,
        "no_mfa": True,
        "no_password": False,
        "scim_provisioned": False,
    }


def _may_grant(principal: Principal | None, role: Role) -> None:
    """An API user hands out only what it holds: a role it grants may not reach past its own scopes."""
    if principal is not None and principal.kind == "api_user":
        beyond = sorted(role_actions(role) - principal.scopes)
        if beyond:
            raise Forbidden(f"You cannot grant the role {role.label}: it allows {', '.join(beyond[:5])}"
                            f"{' …' if len(beyond) > 5 else ''}, which your scopes do not")


def _role_or_error(value: object, *, default: Role | None) -> Role:
    if value in (None, ""):
        if default is None:
            raise ValidationFailed("role is required", field="role")
        return default
    role = parse_role(value)
    if role is None:
        raise ValidationFailed(
            "role must be one of Administrator, Developer, Support, View-only", field="role"
        )
    return role


@transaction.atomic
def team_invite(*, principal: Principal, team: Team, username: object, role: object = None) -> MembershipBase:
    """Add an existing user to the team. api-js sends no role: they join as Developer, Particle's default."""
    team.require(principal, "teams.users:invite")
    email = validation.text(username, field="username", max_length=254).lower()
    chosen = _role_or_error(role, default=Role.DEVELOPER)
    _may_grant(principal, chosen)
    user = User.objects.filter(email=email, kind=User.Kind.HUMAN).first()
    if user is None:
        raise ValidationFailed(f"No user has the email {email}; they must sign up first", field="username",
                               code="user_not_found")
    if user.pk == team.owner.pk or team.memberships().filter(user=user).exists():
        raise Conflict(f"{email} is already a member of this team", field="username")
    seat = team.membership_model.objects.create(**{team.fk: team.target, "user": user, "role": chosen})
    team._audit(principal, "invite", email, {"role": chosen.value})
    enqueue_on_commit(team.invite_task, seat_id=seat.pk)
    return seat


def team_invite_email(*, seat: MembershipBase, where: str, link: str) -> None:
    """Tell a new team member where they were added and with which role."""
    send_mail(
        subject=f"You were added to {where} on Cyan",
        message=f"You now have the role {seat.role_label} in {where}.\n\nOpen it: {link}\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[seat.user.email],
    )


def ensure_not_owner(team: Team, username: str, what: str) -> None:
    if (username or "").strip().lower() == team.owner.email:
        raise ValidationFailed(f"The owner {what}", code="owner_immutable")


@transaction.atomic
def team_set_role(*, principal: Principal, team: Team, username: str, role: object) -> MembershipBase:
    team.require(principal, "teams.users:update")
    ensure_not_owner(team, username, "keeps the Administrator (Owner) role")
    seat = team.seat(username)
    if seat.user.is_programmatic:
        raise ValidationFailed("API users have scopes, not roles", field="role")
    seat.role = _role_or_error(role, default=None)
    _may_grant(principal, Role(seat.role))
    seat.save(update_fields=["role"])
    team._audit(principal, "role", seat.user.email, {"role": seat.role})
    return seat


@transaction.atomic
def team_remove(*, principal: Principal, team: Team, username: str) -> None:
    team.require(principal, "teams.users:remove")
    ensure_not_owner(team, username, "cannot be removed from the team")
    seat = team.seat(username)
    user = seat.user
    seat.delete()
    if user.is_programmatic:
        user.delete()  # an API user exists only for its one team; its token goes with it
    team._audit(principal, "remove", user.email)


def _scopes_or_error(scopes: object, principal: Principal) -> list[str]:
    if isinstance(scopes, str):
        scopes = [s for s in scopes.replace(",", " ").split() if s]
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise ValidationFailed("scopes must be a non-empty list of scope names", field="scopes")
    unknown = sorted(set(scopes) - KNOWN_SCOPES)
    if unknown:
        raise ValidationFailed(f"Unknown scopes: {', '.join(unknown)}", field="scopes")
    if principal.kind == "api_user":
        beyond = sorted(set(scopes) - principal.scopes)
        if beyond:  # an API user may hand out only what it holds itself
            raise Forbidden(f"You cannot grant scopes you do not hold: {', '.join(beyond)}")
    return sorted(set(scopes))


def _api_token(team: Team, user: User, scopes: list[str]) -> str:
    AccessToken.objects.filter(user=user).delete()  # exactly one valid token per API user
    issued = token_issue(kind=AccessToken.Kind.API_USER, user=user, client_name="api-user",
                         product_id=team.product_id, account=team.account if team.product_id is None else None,
                         scopes=scopes, expires_in=0, with_refresh=False)
    return issued.access_token


@transaction.atomic
def api_user_create(*, principal: Principal, team: Team, friendly_name: object, scopes: object) -> tuple[User, str]:
    team.require(principal, "teams.users:invite")
    name = validation.text(friendly_name, field="friendly_name", max_length=200)
    chosen = _scopes_or_error(scopes, principal)
    email = f"{slugify(team.slug)[:40] or 'api'}+{secrets.token_hex(4)}@api.particle.io"
    user = User.objects.create_user(email, None, kind=User.Kind.API, friendly_name=name)
    team.membership_model.objects.create(**{team.fk: team.target, "user": user, "role": None, "scopes": chosen})
    token = _api_token(team, user, chosen)
    team._audit(principal, "api_user.create", email, {"scopes": chosen})
    return user, token


@transaction.atomic
def api_user_update(*, principal: Principal, team: Team, username: str, friendly_name: object = None,
                    scopes: object = None) -> tuple[User, str | None]:
    """Rename and/or rescope; a scope change issues a new token and the old one stops working."""
    team.require(principal, "teams.users:update")
    seat = team.seat(username)
    if not seat.user.is_programmatic:
        raise ValidationFailed("Only API users have scopes; change a person's role instead", field="scopes")
    user, new_token = seat.user, None
    if friendly_name is not None:
        user.friendly_name = validation.text(friendly_name, field="friendly_name", max_length=200)
        user.save(update_fields=["friendly_name"])
    if scopes is not None:
        chosen = _scopes_or_error(scopes, principal)
        if chosen != sorted(seat.scopes):
            seat.scopes = chosen
            seat.save(update_fields=["scopes"])
            new_token = _api_token(team, user, chosen)
    team._audit(principal, "api_user.update", user.email, {"scopes": seat.scopes})
    return user, new_token


@transaction.atomic
def api_user_regenerate(*, principal: Principal, team: Team, username: str) -> tuple[User, str]:
    team.require(principal, "teams.users:update")
    seat = team.seat(username)
    if not seat.user.is_programmatic:
        raise NotFound(f"{username} is not an API user of this team")
    token = _api_token(team, seat.user, list(seat.scopes))
    team._audit(principal, "api_user.token", seat.user.email)
    return seat.user, token


def org_team(org: Account) -> Team:
    return Team(kind="organization", target=org, membership_model=OrgMembership, fk="account",
                owner=org.owner, slug=org.slug, account=org)
