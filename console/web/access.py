"""What every console view shares: the sign-in guard, typed service errors turned into pages and form
errors, and the organization lookup (404 for outsiders, 403 for a role that may not act)."""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.http import Http404

from console import selectors
from console.errors import Forbidden, NotFound, ServiceError
from console.models import Account
from console.scoping import rights_for
from console.web import errors


def console_view(view):
    """Signed-in people only; a service's NotFound becomes the 404 page and Forbidden the 403 page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(request, "principal", None) is None:
            return redirect_to_login(request.get_full_path())
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.description) from exc
        except Forbidden as exc:
            return errors.forbidden(request, exc.description)

    return wrapper


def visible_accounts(request) -> list[Account]:
    """The accounts the signed-in person may see, in the switcher's order: read once per request, for the
    current account (CurrentAccountMiddleware), the page's own account (enter_account) and the switcher."""
    found = getattr(request, "_visible_accounts", None)
    if found is None:
        found = request._visible_accounts = list(
            Account.objects.restrict(request.principal).select_related("owner").order_by("kind", "name"))
    return found


def own_sandbox(request) -> Account:
    """The signed-in user's sandbox, from the accounts this request already read when they are there."""
    for account in visible_accounts(request):
        if account.kind == Account.Kind.SANDBOX and account.owner_id == request.user.pk:
            return account
    return Account.objects.get(kind=Account.Kind.SANDBOX, owner=request.user)


def enter_account(request, account: Account | None) -> None:
    """Make the switcher show the account whose page this is, when the user can see that account."""
    if account is None or all(a.pk != account.pk for a in visible_accounts(request)):
        return
    request.current_account = account
    if request.session.get("account_id") != account.pk:
        request.session["account_id"] = account.pk


def org_get(request, ident: str, action: str | None = None) -> Account:
    """The organization by slug (or id): NotFound unless the user has a seat, Forbidden if the role may not
    `action`; the switcher then shows it."""
    org = selectors.org_get(principal=request.principal, ident=ident, action=action)
    enter_account(request, org)
    return org


def org_allows(request, org: Account, action: str) -> bool:
    return rights_for(request.principal, org).may(action)


def form_error(form: forms.Form, exc: ServiceError, fields: dict[str, str] | None = None) -> None:
    """Show a service's refusal on the field it names (mapped through `fields`), else above the form."""
    name = (fields or {}).get(exc.field or "", exc.field)
    form.add_error(name if name in form.fields else None, exc.description)
