"""Console pages of the accounts half: sign-in, the account switcher, organizations and their teams,
and the sandbox's Authentication page (access tokens and OAuth clients).

Views are thin: a form checks the input, a service acts, typed service errors become form errors or
404/403 pages (see `console.web.access`). Products' pages live in `products/web/`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import services
from console.errors import ServiceError
from console.models import AccessToken, Account, OAuthClient
from console.teams import org_team, team_entries
from console.web import team as team_views
from console.web.access import console_view, enter_account, form_error, org_allows, org_get
from console.web.forms import ClientCreateForm, LoginForm, OrgCreateForm, TokenCreateForm
from console.web.nav import account_home, account_place, org_place, sandbox_place

# --- signing in -------------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


@require_POST
def logout_view(request):
    logout(request)
    messages.info(request, "You have signed out.")
    return redirect("console:login")


@console_view
def home(request):
    return redirect(account_home(request.current_account))


@console_view
@require_POST
def switch_account(request):
    """Show another account: only one the user can see (their sandbox, or an org where they have a seat)."""
    wanted = request.POST.get("account_id", "")
    account = (Account.objects.restrict(request.principal).filter(pk=int(wanted)).first()
               if wanted.isascii() and wanted.isdigit() else None)
    if account is None or (account.is_sandbox and account.owner_id != request.user.pk):
        raise Http404("No such account")
    request.session["account_id"] = account.pk
    return redirect(account_home(account))


# --- organizations ----------------------------------------------------------------------------------


@console_view
def org_create(request):
    form = OrgCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = services.org_create(creator=request.user, name=form.cleaned_data["name"],
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


# --- the sandbox's Authentication page ----------------------------------------------------------------


def _sandbox_auth_context(request, **extra) -> dict:
    place = sandbox_place(request.current_account, "authentication")
    place.crumbs.append(("Authentication", None))
    tokens = AccessToken.objects.filter(user=request.user, kind=AccessToken.Kind.USER).select_related("client")
    clients = OAuthClient.objects.filter(owner=request.user, product_id__isnull=True)
    return {
        "place": place,
        "tokens": tokens,
        "client_rows": [(c, reverse("console:client-delete", args=[c.client_id])) for c in clients],
        "token_form": TokenCreateForm(),
        "client_form": ClientCreateForm(with_scope=False),
        "can_manage_clients": True,
        **extra,
    }


@console_view
def sandbox_auth(request):
    enter_account(request, services.sandbox_of(request.user))
    ctx: dict = {}
    status = 200
    if request.method == "POST":
        intent = request.POST.get("intent")
        if intent == "token":
            form = TokenCreateForm(request.POST)
            if form.is_valid():
                issued = services.token_issue(kind=AccessToken.Kind.USER, user=request.user,
                                              client_name="cyan-console",
                                              expires_in=form.cleaned_data["expires_in"], with_refresh=False)
                ctx["revealed"] = {
                    "title": "Access token created", "label": "Access token", "value": issued.access_token,
                    "note": "Copy it now: Cyan stores only a hash and will not show it again.",
                }
            else:
                ctx.update(token_form=form, open_dialog="token-dialog")
                status = 400
        elif intent == "client":
            form = ClientCreateForm(request.POST, with_scope=False)
            if form.is_valid():
                try:
                    client, secret = services.client_create(
                        principal=request.principal, owner=request.user, name=form.cleaned_data["name"],
                        type=form.cleaned_data["type"], redirect_uri=form.cleaned_data["redirect_uri"] or None)
                except ServiceError as exc:
                    form_error(form, exc)
                else:
                    ctx["revealed"] = _client_revealed(client, secret)
            if "revealed" not in ctx:
                ctx.update(client_form=form, open_dialog="client-dialog")
                status = 400
        else:
            status = 400
    return render(request, "console/sandbox_auth.html", _sandbox_auth_context(request, **ctx), status=status)


def _client_revealed(client: OAuthClient, secret: str) -> dict:
    return {
        "title": f"OAuth client “{client.name}” created", "label": "Client secret", "value": secret,
        "pairs": [("Client ID", client.client_id)],
        "note": "Copy the secret now: it is shown only once. Lost it? Delete the client and create a new one.",
    }


@console_view
@require_POST
def token_revoke(request, pk: int):
    token = AccessToken.objects.filter(pk=pk, user=request.user, kind=AccessToken.Kind.USER).first()
    if token is None:
        raise Http404("No such token")
    services.token_revoke(token=token)
    messages.success(request, f"Token {token.prefix}… was revoked; it no longer works.")
    return redirect("console:sandbox-auth")


@console_view
@require_POST
def client_delete(request, client_id: str):
    client = services.client_get_for_owner(client_id=client_id, owner=request.user)
    services.client_delete(principal=request.principal, client=client)
    messages.success(request, f"OAuth client {client_id} was deleted, with the tokens issued to it.")
    return redirect("console:sandbox-auth")
