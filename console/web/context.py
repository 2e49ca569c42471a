"""Template context for the console shell: the account switcher's entries and the current account."""

from console.models import Account


def shell(request) -> dict:
    principal = getattr(request, "principal", None)
    if principal is None:
        return {}
    accounts = list(Account.objects.restrict(principal).select_related("owner").order_by("kind", "name"))
    sandbox = [a for a in accounts if a.is_sandbox and a.owner_id == principal.user.pk]
    orgs = [a for a in accounts if not a.is_sandbox]
    return {"switcher_accounts": sandbox + orgs, "current_account": request.current_account}
