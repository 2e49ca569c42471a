"""Console pages of organizations: creating one, its settings and its team."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from console.errors import ServiceError
from console.services import orgs as org_services
from console.services.teams import org_team, team_entries
from console.web import team as team_views
from console.web.access import console_view, form_error, org_allows, org_get
from console.web.forms import OrgCreateForm
from console.web.nav import account_home, account_place, org_place



@console_view
def org_create(request):
    form = OrgCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = org_services.org_create(creator=request.user, name=form.cleaned_data["name"],
                                          slug=form.cleaned_data["slug"] or None)
        except ServiceError as exc:
            form_error(form, exc)
        else:
            request.session["account_id"] = org.pk
            messages.success(request, f"Organization {org.name} created. You are its Administrator (Owner).")
            return redirect(account_home(org))
    place = account_place(request.current_account)
    place.crumbs = [("New organization", None)]
    return render(request, "console/org_create.html", {"form": form, "place": place},
                  status=400 if form.errors else 200)


@console_view
def org_home(request, org: str):
    return redirect(account_home(org_get(request, org)))


@console_view
def org_settings(request, org: str):
    account = org_get(request, org, "orgs:get")
    place = org_place(account, "settings")
    place.crumbs.append(("Settings", None))
    team = team_entries(org_team(account))
    return render(request, "console/org_settings.html", {
        "place": place, "org": account,
        "people_count": sum(1 for e in team if not e.get("is_programmatic")),
        "api_user_count": sum(1 for e in team if e.get("is_programmatic")),
    })


def _org_team_resolver(org_slug: str):
    def resolve(request, action: str) -> team_views.TeamPlace:
        account = org_get(request, org_slug, action)
        place = org_place(account, "team")
        place.crumbs.append(("Team", None))
        return team_views.TeamPlace(
            team=org_team(account), place=place,
            page_url=reverse("console:org-team", args=[account.slug]),
            role_url=lambda u: reverse("console:org-team-role", args=[account.slug, u]),
            remove_url=lambda u: reverse("console:org-team-remove", args=[account.slug, u]),
            can_manage=org_allows(request, account, "teams.users:invite"),
            note="Roles here apply to every product the organization owns.",
        )

    return resolve


@console_view
def org_team_page(request, org: str):
    return team_views.team_page(request, _org_team_resolver(org))


@console_view
def org_team_role(request, org: str, username: str):
    return team_views.team_set_role_view(request, _org_team_resolver(org), username)


@console_view
def org_team_remove(request, org: str, username: str):
    return team_views.team_remove_view(request, _org_team_resolver(org), username)
