"""The sandbox's Authentication page: the user's access tokens and OAuth clients."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.errors import ServiceError
from console.models import AccessToken, OAuthClient
from console.services import clients as client_services
from console.services import tokens as token_services
from console.services import users as user_services
from console.web.access import console_view, enter_account, form_error
from console.web.forms import ClientCreateForm, TokenCreateForm
from console.web.nav import sandbox_place



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
    enter_account(request, user_services.sandbox_of(request.user))
    ctx: dict = {}
    status = 200
    if request.method == "POST":
        intent = request.POST.get("intent")
        if intent == "token":
            form = TokenCreateForm(request.POST)
            if form.is_valid():
                issued = token_services.token_issue(kind=AccessToken.Kind.USER, user=request.user,
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
                    client, secret = client_services.client_create(
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
    token_services.token_revoke(token=token)
    messages.success(request, f"Token {token.prefix}… was revoked; it no longer works.")
    return redirect("console:sandbox-auth")


@console_view
@require_POST
def client_delete(request, client_id: str):
    client = client_services.client_get_for_owner(client_id=client_id, owner=request.user)
    client_services.client_delete(principal=request.principal, client=client)
    messages.success(request, f"OAuth client {client_id} was deleted, with the tokens issued to it.")
    return redirect("console:sandbox-auth")
