"""Teams: one implementation for organization teams and product teams (particle-api.md §4, §9).

A `Team` wraps the scoped object (an org `Account` or a `Product`) and its membership model; products
build theirs in `products.services.product_team`. People are invited by email with a role; API users
are programmatic `User` rows with scopes and exactly one token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from console import hooks, validation
from console.errors import Conflict, Forbidden, NotFound, ValidationFailed
from console.models import AccessToken, Account, Invitation, MembershipBase, OrgMembership, User, hash_secret
from console.queue import enqueue_on_commit
from console.roles import KNOWN_SCOPES, OWNER_LABEL, ROLE_IDS, Role, parse_role, role_actions
from console.scoping import Principal
from console.services.audit import audit_record
from console.services.tokens import token_issue

ORG_INVITE_TASK = "console.send_org_invite"
INVITATION_TASK = "console.send_invitation"


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

    def _audit(self, principal: Principal | None, action: str, target: str, data: dict | None = None) -> None:
        audit_record(principal=principal, action=f"team.{action}", target=target, account=self.account,
                     product_id=self.product_id, data=data)

    @property
    def where(self) -> str:
        return f"the {'product' if self.kind == 'product' else 'organization'} {self.target.name}"

    def invitations(self):
        """Open invitations of this team (neither accepted nor revoked; expired ones included)."""
        mine = {"product_id": self.product_id} if self.kind == "product" else {"account": self.target}
        return Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True, **mine)


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


def pending_entries(team: Team) -> list[dict]:
    """The team's unexpired invitations, in the shape of a person's entry (so Particle's clients read them as
    members), marked `pending` with their expiry."""
    now = timezone.now()
    return [{"username": inv.email, "role": {"id": ROLE_IDS[Role(inv.role)], "name": inv.role_label},
             "pending": True, "expires_at": inv.expires_at.isoformat().replace("+00:00", "Z"),
             "invited_by": inv.invited_by.email if inv.invited_by_id else None}
            for inv in team.invitations().filter(expires_at__gt=now).select_related("invited_by")
                                           .order_by("created_at")]


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


@dataclass
class Invited:
    """What an invite did: `seat` for someone who has an account (they are on the team now), `invitation` for
    an email with no account yet (they join when they sign up through the mailed link)."""

    email: str
    role: Role
    seat: MembershipBase | None = None
    invitation: Invitation | None = None

    @property
    def pending(self) -> bool:
        return self.invitation is not None


@transaction.atomic
def team_invite(*, principal: Principal, team: Team, username: object, role: object = None) -> Invited:
    """Add a person to the team by email. api-js sends no role: they join as Developer, Particle's default.
    An email with no account gets a pending invitation and a mailed sign-up link instead."""
    team.require(principal, "teams.users:invite")
    email = validation.email(username, field="username")
    chosen = _role_or_error(role, default=Role.DEVELOPER)
    _may_grant(principal, chosen)
    user = User.objects.filter(email=email).first()
    if user is not None and user.is_programmatic:
        raise ValidationFailed(f"{email} is an API user; API users are added with scopes", field="username")
    if user is None:
        return Invited(email=email, role=chosen, invitation=_invitation_create(principal, team, email, chosen))
    if user.pk == team.owner.pk or team.memberships().filter(user=user).exists():
        raise Conflict(f"{email} is already a member of this team", field="username")
    seat = team.membership_model.objects.create(**{team.fk: team.target, "user": user, "role": chosen})
    # They made their account without the link: the seat given now replaces the invitation.
    team.invitations().filter(email=email).update(revoked_at=timezone.now())
    team._audit(principal, "invite", email, {"role": chosen.value})
    enqueue_on_commit(team.invite_task, seat_id=seat.pk)
    return Invited(email=email, role=chosen, seat=seat)


def invitation_token(invitation: Invitation) -> str:
    """The mailed token: derived from the row's salt under SECRET_KEY, so the database alone cannot rebuild it,
    and the task that mails it needs only the row's id."""
    return hmac.new(settings.SECRET_KEY.encode(), f"cyan-invitation:{invitation.salt}".encode(),
                    hashlib.sha256).hexdigest()[:40]


def invitation_link(invitation: Invitation) -> str:
    return f"{settings.PUBLIC_URL}/signup/?invite={invitation_token(invitation)}"


def _invitation_create(principal: Principal, team: Team, email: str, role: Role) -> Invitation:
    open_ = team.invitations().filter(email=email).first()
    if open_ is not None:
        if open_.expires_at > timezone.now():
            raise Conflict(f"{email} already has a pending invitation to this team; revoke it to invite again",
                           field="username")
        open_.revoked_at = timezone.now()  # expired: make room for the new one
        open_.save(update_fields=["revoked_at"])
    invitation = Invitation(
        email=email, where=team.where[:200], role=role.value, salt=secrets.token_hex(16),
        invited_by=principal.user if principal is not None and principal.is_user else None,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
        **({"product_id": team.product_id} if team.kind == "product" else {"account": team.target}))
    invitation.token_hash = hash_secret(invitation_token(invitation))
    try:
        with transaction.atomic():  # two invites of one email race to the one-open-invitation index
            invitation.save()
    except IntegrityError:
        raise Conflict(f"{email} already has a pending invitation to this team; revoke it to invite again",
                       field="username")
    team._audit(principal, "invitation.create", email, {"role": role.value})
    enqueue_on_commit(INVITATION_TASK, invitation_id=invitation.pk)
    return invitation


def invitation_email(*, invitation: Invitation) -> None:
    """Mail the sign-up link of an invitation."""
    inviter = invitation.invited_by.display_name if invitation.invited_by_id else "A team administrator"
    send_mail(
        subject=f"You are invited to {invitation.where} on Cyan",
        message=(f"{inviter} invited you to join {invitation.where} on Cyan with the role {invitation.role_label}.\n\n"
                 f"Create your account here to join:\n{invitation_link(invitation)}\n\n"
                 f"The link works until {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


class InvitationRefused(ValidationFailed):
    code = "invalid_invitation"


def invitation_get(*, token: object) -> Invitation:
    """The open invitation a link's token names, or InvitationRefused saying why it no longer works."""
    if not isinstance(token, str) or not token or len(token) > 100:
        raise InvitationRefused("This invitation link is not valid", field="invitation")
    invitation = Invitation.objects.filter(token_hash=hash_secret(token)).select_related("invited_by").first()
    if invitation is None:
        raise InvitationRefused("This invitation link is not valid", field="invitation")
    state = invitation.state
    if state == "accepted":
        raise InvitationRefused("This invitation was already used; sign in instead", field="invitation")
    if state == "revoked":
        raise InvitationRefused("This invitation was revoked; ask the team for a new one", field="invitation")
    if state == "expired":
        raise InvitationRefused("This invitation has expired; ask the team for a new one", field="invitation")
    return invitation


def invitation_team(invitation: Invitation) -> Team:
    if invitation.account_id is not None:
        return org_team(invitation.account)
    team = hooks.product_team_by_id(invitation.product_id)
    if team is None:
        raise InvitationRefused("The product of this invitation no longer exists", field="invitation")
    return team


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> MembershipBase:
    """Seat `user` (who signed up through the link, with the invited email) on the team with the invited role,
    and close the invitation (a conditional UPDATE: two uses of one link race for one row)."""
    if user.email != invitation.email:
        raise InvitationRefused(f"This invitation is for {invitation.email}; sign up with that email",
                                field="username")
    team = invitation_team(invitation)
    closed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True,
                                       expires_at__gt=timezone.now()).update(accepted_at=timezone.now(),
                                                                            accepted_by=user)
    if closed != 1:
        raise InvitationRefused("This invitation is no longer open", field="invitation")
    seat = team.memberships().filter(user=user).first()
    if seat is None and user.pk != team.owner.pk:
        seat = team.membership_model.objects.create(**{team.fk: team.target, "user": user,
                                                        "role": invitation.role})
    principal = Principal.for_user(user)
    team._audit(principal, "invitation.accept", user.email, {"role": invitation.role})
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
def team_remove(*, principal: Principal, team: Team, username: str) -> str:
    """Remove a member ("member"), or revoke the pending invitation of an email with no seat ("invitation")."""
    team.require(principal, "teams.users:remove")
    ensure_not_owner(team, username, "cannot be removed from the team")
    email = (username or "").strip().lower()
    if not team.memberships().filter(user__email=email).exists():
        revoked = team.invitations().filter(email=email).update(revoked_at=timezone.now())
        if revoked:
            team._audit(principal, "invitation.revoke", email)
            return "invitation"
    seat = team.seat(username)
    user = seat.user
    seat.delete()
    if user.is_programmatic:
        user.delete()  # an API user exists only for its one team; its token goes with it
    team._audit(principal, "remove", user.email)
    return "member"


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
