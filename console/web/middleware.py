"""Which account (the sandbox, or an organization) the console is showing, kept in the session."""

from __future__ import annotations

from console.models import Account
from console.scoping import Principal


class CurrentAccountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.principal = None
        request.current_account = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not user.is_programmatic:
            request.principal = Principal.for_user(user)
            wanted = request.session.get("account_id")
            visible = Account.objects.restrict(request.principal)
            account = visible.filter(pk=wanted).first() if wanted else None
            if account is None:
                account = visible.filter(kind=Account.Kind.SANDBOX, owner=user).first()
            request.current_account = account
        return self.get_response(request)
