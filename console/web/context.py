"""Template context for the console shell: the account switcher's entries, the current account, and the
sidebar of the current account (pages of a product or an org pass their own `place`)."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from console.models import Account
from console.web.access import visible_accounts
from console.web.nav import account_place


def _switcher(request) -> list[Account]:
    accounts = visible_accounts(request)
    sandbox = [a for a in accounts if a.is_sandbox and a.owner_id == request.principal.user.pk]
    orgs = sorted((a for a in accounts if not a.is_sandbox), key=lambda a: a.name.lower())
    return sandbox + orgs


def shell(request) -> dict:
    principal = getattr(request, "principal", None)
    if principal is None:
        return {}
    # Lazy: htmx partials render without the shell and should not pay for the sidebar's work. The switcher's
    # accounts are the list the middleware read for the current account (visible_accounts): no query of its own.
    return {
        "switcher_accounts": SimpleLazyObject(lambda: _switcher(request)),
        "current_account": request.current_account,
        "place": SimpleLazyObject(lambda: account_place(request.current_account)),
    }
