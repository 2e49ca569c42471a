"""Which account (the sandbox, or an organization) the console is showing, kept in the session."""

from __future__ import annotations

from console.models import Account
from console.scoping import Principal
from console.web.access import visible_accounts
from console.web.errors import method_not_allowed

# The API's paths: no console page answers there, and API views never read the console's account.
API_PREFIXES = ("/v1", "/oauth")


class CurrentAccountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.principal = None
        request.current_account = None
        if request.path.startswith(API_PREFIXES):
            # An API call authenticates by its own token (DRF); looking up a session user and an account
            # for it cost ~0.1 ms a request for nothing.
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not user.is_programmatic:
            request.principal = Principal.for_user(user)
            wanted = request.session.get("account_id")
            visible = visible_accounts(request)  # one query, which the page's switcher reuses
            account = next((a for a in visible if a.pk == wanted), None) if wanted else None
            if account is None:
                account = next((a for a in visible if a.kind == Account.Kind.SANDBOX and a.owner_id == user.pk), None)
            request.current_account = account
        return self.get_response(request)


class MethodNotAllowedPageMiddleware:
    """A console address opened with the wrong method (typing or bookmarking the target of a button, which only
    takes POST) gets a page with a way back instead of Django's empty 405. The API keeps its JSON answers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 405 or response.content or request.path.startswith(API_PREFIXES):
            return response
        page = method_not_allowed(request, allowed=response.get("Allow", ""))
        page["Allow"] = response.get("Allow", "")
        return page
