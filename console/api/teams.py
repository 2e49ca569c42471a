"""Particle's team routes, shared by organizations (`console.api.orgs`) and products
(`products.api.views`): subclasses say how to find the team from the URL."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body
from console.errors import ValidationFailed
from console.roles import ROLE_IDS, Role
from console.services.teams import (
    Team,
    api_user_create,
    api_user_regenerate,
    api_user_update,
    ensure_not_owner,
    pending_entries,
    team_entries,
    team_invite,
    team_remove,
    team_set_role,
)


class TeamViewBase(APIView):
    """Particle's team routes; subclasses say how to find the team from the URL."""

    def team(self, request, action: str, **kwargs) -> Team:
        raise NotImplementedError

    def get(self, request, **kwargs):
        team = self.team(request, "teams.users:list", **kwargs)
        return Response({"ok": True, "team": team_entries(team) + pending_entries(team)})

    def post(self, request, **kwargs):
        data = body(request)
        team = self.team(request, "teams.users:invite", **kwargs)
        if "friendly_name" in data or "scopes" in data:
            user, token = api_user_create(principal=request.auth, team=team, friendly_name=data.get("friendly_name"),
                                          scopes=data.get("scopes"))
            return Response({"ok": True, "created": {"username": user.email, "friendly_name": user.friendly_name,
                                                     "is_programmatic": True, "tokens": [{"token": token}]}})
        invited = team_invite(principal=request.auth, team=team, username=data.get("username"), role=data.get("role"))
        body_out = {"username": invited.email, "role": invited.role.label}
        if invited.pending:  # no account yet: a sign-up link was mailed
            body_out.update(pending=True, expires_at=invited.invitation.expires_at.isoformat().replace("+00:00", "Z"))
        return Response({"ok": True, "invited": body_out})


class TeamMemberViewBase(APIView):
    def team(self, request, action: str, **kwargs) -> Team:
        raise NotImplementedError

    def put(self, request, username: str, **kwargs):
        data = body(request)
        team = self.team(request, "teams.users:update", **kwargs)
        ensure_not_owner(team, username, "keeps the Administrator (Owner) role")
        seat = team.seat(username)
        if seat.user.is_programmatic and "role" in data:
            raise ValidationFailed("API users have scopes, not roles", field="role")
        if seat.user.is_programmatic:
            user, token = api_user_update(principal=request.auth, team=team, username=username,
                                          friendly_name=data.get("friendly_name"), scopes=data.get("scopes"))
            updated = {"username": user.email, "friendly_name": user.friendly_name,
                       "scopes": list(team.seat(username).scopes)}
            if token:
                updated["tokens"] = [{"token": token}]
            return Response({"ok": True, "updated": updated})
        seat = team_set_role(principal=request.auth, team=team, username=username, role=data.get("role"))
        return Response({"ok": True, "updated": {"username": seat.user.email,
                                                 "role": {"id": ROLE_IDS[Role(seat.role)], "name": seat.role_label}}})

    post = put  # the apidoc says POST, the API answers PUT: accept both

    def delete(self, request, username: str, **kwargs):
        team = self.team(request, "teams.users:remove", **kwargs)
        team_remove(principal=request.auth, team=team, username=username)
        return Response({"ok": True})


class TeamTokenViewBase(APIView):
    def team(self, request, action: str, **kwargs) -> Team:
        raise NotImplementedError

    def put(self, request, username: str, **kwargs):
        team = self.team(request, "teams.users:update", **kwargs)
        user, token = api_user_regenerate(principal=request.auth, team=team, username=username)
        return Response({"ok": True, "updated": {"username": user.email, "tokens": [{"token": token}]}})

    post = put
