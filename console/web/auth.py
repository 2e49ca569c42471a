"""Console pages for signing in and out, the home redirect and the account switcher."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from console.errors import ServiceError
from console.models import Account, User
from console.selectors import mfa_enabled
from console.services import password_reset, teams
from console.services import users as user_services
from console.web.access import console_view, form_error
from console.web.forms import LoginForm, NewPasswordForm, PasswordResetRequestForm, SignupForm
from console.web.mfa import remember_pending_sign_in
from console.web.nav import account_home

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
SIGNUP_FIELDS = {"username": "email", "account_info.first_name": "first_name",
                 "account_info.last_name": "last_name", "account_info.company_name": "company_name"}

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


def signup(request):
    """/signup/: make an account and sign in to its sandbox. Closed (SIGNUP_OPEN=false): says so, no form.
    `?invite=<token>` (an invitation's link) works when closed, fixes the email and joins the team; a signed-in
    person with the invited email accepts it here instead."""
    token = request.GET.get("invite", "")
    invitation, invite_error = None, ""
    if token:
        try:
            invitation = teams.invitation_get(token=token)
        except ServiceError as exc:
            invite_error = exc.description
    if request.user.is_authenticated:
        if invitation is None:
            if invite_error:
                messages.error(request, invite_error)
            return redirect("console:home")
        return _accept_signed_in(request, invitation)
    if invitation is not None and User.objects.filter(email=invitation.email).exists():
        # They made their account without the link: sign in, and this page then offers to join.
        return render(request, "console/signup.html", {"invitation": invitation, "has_account": True,
                                                       "next": request.get_full_path()})
    is_open = user_services.signup_open() or invitation is not None
    form = SignupForm(request.POST or None, initial={"email": invitation.email} if invitation else None)
    if invitation is not None:
        form.fields["email"].widget.attrs["readonly"] = True
    status = 400 if invite_error else 200
    if request.method == "POST" and is_open:
        if form.is_valid():
            try:
                user = user_services.user_signup(**form.cleaned_data, invitation=token or None)
            except ServiceError as exc:
                form_error(form, exc, SIGNUP_FIELDS)
            else:
                login(request, user, backend=MODEL_BACKEND)
                if invitation is not None:
                    messages.success(request, f"Welcome to Cyan. You joined {invitation.where} as "
                                              f"{invitation.role_label}.")
                else:
                    messages.success(request, "Welcome to Cyan. This is your sandbox: add a device or create a "
                                              "product.")
                return redirect("console:home")
        status = 400
    elif request.method == "POST":
        status = 403
    return render(request, "console/signup.html", {"form": form, "signup_open": is_open, "invitation": invitation,
                                                   "invite_error": invite_error}, status=status)


def _accept_signed_in(request, invitation):
    """The invited person already has an account (made without the link): join from here, signed in."""
    if request.method == "POST":
        try:
            teams.invitation_accept(invitation=invitation, user=request.user)
        except ServiceError as exc:
            messages.error(request, exc.description)
        else:
            messages.success(request, f"You joined {invitation.where} as {invitation.role_label}.")
        return redirect("console:home")
    return render(request, "console/invitation_accept.html", {"invitation": invitation})


def password_reset_request(request):
    """/password-reset/: "Forgot password?". The page says the same whether or not the email has an account."""
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            password_reset.password_reset_request(email=form.cleaned_data["email"])
            return render(request, "console/password_reset_sent.html", {"email": form.cleaned_data["email"]})
        return render(request, "console/password_reset.html", {"form": form}, status=400)
    return render(request, "console/password_reset.html", {"form": form})


def password_reset_confirm(request, token: str):
    """/password-reset/<token>/: the mailed link. A bad, expired or used link says so and offers a new one."""
    try:
        user = password_reset.password_reset_user(token=token)
    except ServiceError as exc:
        return render(request, "console/password_reset_confirm.html", {"invalid": exc.description}, status=400)
    form = NewPasswordForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                password_reset.password_reset_complete(token=token, password=form.cleaned_data["password"])
            except ServiceError as exc:
                form_error(form, exc)
            else:
                if request.user.is_authenticated:
                    logout(request)
                messages.success(request, "Your password was changed. Sign in with the new one.")
                return redirect("console:login")
        return render(request, "console/password_reset_confirm.html", {"form": form, "email": user.email},
                      status=400)
    return render(request, "console/password_reset_confirm.html", {"form": form, "email": user.email})


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
