"""Console pages for signing in and out, the home redirect and the account switcher."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from console.models import Account
from console.selectors import mfa_enabled
from console.web.access import console_view
from console.web.forms import LoginForm
from console.web.mfa import remember_pending_sign_in
from console.web.nav import account_home


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        """A person with MFA is not signed in yet: the code page finishes it (and keeps the checked `next`)."""
        user = form.get_user()
        if mfa_enabled(user):
            remember_pending_sign_in(self.request, user, self.get_redirect_url())
            return redirect("console:login-mfa")
        return super().form_valid(form)


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
