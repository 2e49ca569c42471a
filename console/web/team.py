"""One team UI for organizations and products: the page, role changes (htmx), removal, API users.

The org views (console/web/orgs.py) and product views (products/web/views.py) differ only in how they
find the team and check the caller's role, so each passes a *resolver*: `resolve(request, action)`
returns a `TeamPlace` or raises NotFound/Forbidden (404/403 through `console_view`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from console.errors import ServiceError
from console.roles import parse_role
from console.services.teams import (
    Team,
    api_user_create,
    api_user_regenerate,
    pending_entries,
    team_entries,
    team_invite,
    team_remove,
    team_set_role,
)
from console.web.access import form_error
from console.web.forms import SCOPE_GROUPS, ApiUserForm, InviteForm, RoleForm
from console.web.nav import Place


@dataclass
class TeamPlace:
    team: Team
    place: Place
    page_url: str
    role_url: Callable[[str], str]
    remove_url: Callable[[str], str]
    can_manage: bool  # may invite, change roles, remove, create API users
    note: str = ""  # e.g. "org members also have access" on an org product's team
    note_url: str = ""


Resolver = Callable[[object, str], TeamPlace]


def _rows(request, tp: TeamPlace) -> tuple[list[dict], list[dict]]:
    people, programs = [], []
    for entry in team_entries(tp.team):
        entry = dict(entry)
        entry["role_url"] = tp.role_url(entry["username"])
        entry["remove_url"] = tp.remove_url(entry["username"])
        entry["is_you"] = entry["username"] == request.user.email
        entry["dom_id"] = entry.get("_id") or entry["username"]  # templates cannot read "_id"
        if entry.get("is_programmatic"):
            programs.append(entry)
        else:
            role = parse_role(entry["role"]["name"])
            entry["role_value"] = role.value if role else ""
            people.append(entry)
    return people, programs


def team_page(request, resolve: Resolver):
    """GET the team; POST intent=invite | api_user | regenerate (each checks the role it needs)."""
    tp = resolve(request, "teams.users:list")
    invite_form, api_form = InviteForm(), ApiUserForm()
    revealed = None
    open_dialog = ""
    status = 200
    if request.method == "POST":
        intent = request.POST.get("intent")
        if intent == "invite":
            tp = resolve(request, "teams.users:invite")
            invite_form = InviteForm(request.POST)
            if invite_form.is_valid():
                try:
                    invited = team_invite(principal=request.principal, team=tp.team,
                                          username=invite_form.cleaned_data["username"],
                                          role=invite_form.cleaned_data["role"])
                except ServiceError as exc:
                    form_error(invite_form, exc)
                else:
                    if invited.pending:
                        messages.success(request, f"{invited.email} has no account yet: we emailed them a link to "
                                                  f"sign up and join as {invited.role.label}.")
                    else:
                        messages.success(request, f"{invited.email} joined the team as {invited.role.label}.")
                    return redirect(tp.page_url)
            open_dialog, status = "invite-dialog", 400
        elif intent == "api_user":
            tp = resolve(request, "teams.users:invite")
            api_form = ApiUserForm(request.POST)
            if api_form.is_valid():
                try:
                    user, token = api_user_create(principal=request.principal, team=tp.team,
                                                  friendly_name=api_form.cleaned_data["friendly_name"],
                                                  scopes=api_form.cleaned_data["scopes"])
                except ServiceError as exc:
                    form_error(api_form, exc)
                else:
                    revealed = {"title": f"API user “{user.friendly_name}” created",
                                "label": "Access token", "value": token,
                                "note": "Copy this token now: it is shown only once. It never expires; "
                                        "regenerate it from this page if it leaks."}
                    api_form = ApiUserForm()
            if revealed is None:
                open_dialog, status = "api-user-dialog", 400
        elif intent == "regenerate":
            tp = resolve(request, "teams.users:update")
            try:
                user, token = api_user_regenerate(principal=request.principal, team=tp.team,
                                                  username=request.POST.get("username", ""))
            except ServiceError as exc:
                messages.error(request, exc.description)
                return redirect(tp.page_url)
            revealed = {"title": f"New token for “{user.friendly_name}”", "label": "Access token", "value": token,
                        "note": "The previous token stopped working. Copy this one now: it is shown only once."}
        else:
            return HttpResponseBadRequest("Unknown action")
    people, programs = _rows(request, tp)
    selected = set(api_form["scopes"].value() or [])
    scope_groups = [(label, [(s, s in selected) for s in scopes]) for label, scopes in SCOPE_GROUPS]
    pending = [dict(entry, remove_url=tp.remove_url(entry["username"])) for entry in pending_entries(tp.team)]
    return render(request, "console/team/page.html", {
        "place": tp.place, "tp": tp, "people": people, "programs": programs, "pending": pending,
        "invite_form": invite_form, "api_form": api_form, "scope_groups": scope_groups,
        "revealed": revealed, "open_dialog": open_dialog, "role_form": RoleForm(),
    }, status=status)


@require_POST
def team_set_role_view(request, resolve: Resolver, username: str):
    """Change a person's role. htmx swaps the returned row; a plain form post gets a redirect."""
    tp = resolve(request, "teams.users:update")
    form = RoleForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            seat = team_set_role(principal=request.principal, team=tp.team, username=username,
                                 role=form.cleaned_data["role"])
        except ServiceError as exc:
            error = exc.description
        else:
            if not request.htmx:
                messages.success(request, f"{seat.user.email} is now {seat.role_label}.")
    else:
        error = "Choose one of the listed roles."
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(tp.page_url)
    people, _ = _rows(request, tp)
    row = next((p for p in people if p["username"] == username), None)
    if row is None:
        return HttpResponseBadRequest("Not a member")
    return render(request, "console/team/_person_row.html",
                  {"p": row, "tp": tp, "place": tp.place, "role_form": RoleForm(), "saved": not error, "row_error": error})


@require_POST
def team_remove_view(request, resolve: Resolver, username: str):
    tp = resolve(request, "teams.users:remove")
    try:
        removed = team_remove(principal=request.principal, team=tp.team, username=username)
    except ServiceError as exc:
        messages.error(request, exc.description)
    else:
        messages.success(request, f"The invitation to {username} was revoked." if removed == "invitation"
                         else f"{username} was removed from the team.")
    return redirect(tp.page_url)
