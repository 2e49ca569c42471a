"""API views for organizations and their teams: `/v1/orgs...` (creating one is Cyan's own route)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body, require_user
from console.api.serializers import iso, org_body
from console.api.teams import TeamMemberViewBase, TeamTokenViewBase, TeamViewBase
from console.models import Account
from console.selectors import org_get
from console.services import orgs as org_services
from console.services.teams import Team, org_team


class OrgListView(APIView):
    """GET /v1/orgs (Particle) and POST /v1/orgs (ours: create an organization)."""

    @extend_schema(summary="List the organizations you belong to", tags=["orgs"])
    def get(self, request):
        orgs = Account.objects.restrict(request.auth).filter(kind=Account.Kind.ORGANIZATION).order_by("name")
        return Response({"organizations": [org_body(o) for o in orgs]})

    @extend_schema(summary="Create an organization (Cyan extension; Particle has no such route)", tags=["orgs"],
                   description="Body: `name` (required), `slug` (optional). The caller becomes Administrator (Owner).")
    def post(self, request):
        require_user(request.auth)
        data = body(request)
        org = org_services.org_create(creator=request.auth.user, name=data.get("name"), slug=data.get("slug"))
        return Response({"ok": True, "organization": org_body(org)}, status=201)


class OrgDetailView(APIView):
    """GET /v1/orgs/:org (Cyan extension)."""

    def get(self, request, org: str):
        account = org_get(principal=request.auth, ident=org, action="orgs:get")
        return Response({"organization": {**org_body(account), "owner": account.owner.email,
                                          "created_at": iso(account.created_at)}})


class OrgTeamMixin:
    def team(self, request, action: str, org: str, **kwargs) -> Team:
        return org_team(org_get(principal=request.auth, ident=org, action=action))


class OrgTeamView(OrgTeamMixin, TeamViewBase):
    pass


class OrgTeamMemberView(OrgTeamMixin, TeamMemberViewBase):
    pass


class OrgTeamTokenView(OrgTeamMixin, TeamTokenViewBase):
    pass
