"""Console pages for multi-factor authentication: the second step of signing in, and /account/mfa/ (status,
setting it up with a QR code, recovery codes, turning it off)."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.shortcuts import redirect, render, resolve_url

from console import selectors
from console.clientaddr import client_address
from console.errors import InvalidGrant, LockedOut, ServiceError
from console.models import User
from console.services import mfa as mfa_services
from console.services import users as user_services
from console.web.access import console_view, enter_account, form_error
from console.web.forms import CurrentPasswordForm, MfaCodeForm, MfaConfirmForm
from console.web.nav import sandbox_place

PENDING = "mfa_pending"  # session key: {"user": pk, "until": epoch seconds, "next": url}


def remember_pending_sign_in(request, user: User, next_url: str) -> None:
    """The password was right; the session stays signed out until the code is (MFA_TOKEN_SECONDS at most)."""
    request.session[PENDING] = {"user": user.pk, "until": time.time() + settings.CYAN_MFA_TOKEN_SECONDS,
                                "next": next_url}


def _pending_user(request) -> tuple[User | None, str]:
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or pending.get("until", 0) < time.time():
        request.session.pop(PENDING, None)
        return None, ""
    user = User.objects.filter(pk=pending.get("user"), is_active=True, kind=User.Kind.HUMAN).first()
    return user, pending.get("next") or ""


def login_mfa(request):
    """/login/code/: the second step after a right password."""
    if request.user.is_authenticated:
        return redirect(resolve_url(settings.LOGIN_REDIRECT_URL))
    user, next_url = _pending_user(request)
    if user is None:
        messages.info(request, "Your sign-in expired. Enter your email and password again.")
        return redirect("console:login")
    form = MfaCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                mfa_services.mfa_verify(user=user, code=form.cleaned_data["code"], ip=client_address(request))
            except (InvalidGrant, LockedOut) as exc:
                form.add_error("code", exc.description)
            else:
                request.session.pop(PENDING, None)
                auth_login(request, user)  # a new session key: nothing from before the sign-in carries over
                return redirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))
        status = 400
    return render(request, "console/login_mfa.html", {"form": form, "email": user.email}, status=status)


def _context(request, **extra) -> dict:
    place = sandbox_place(request.current_account)
    place.crumbs = [("Account", None), ("Two-step sign-in", None)]
    return {"place": place, "status": selectors.mfa_status(request.user),
            "regenerate_form": CurrentPasswordForm(prefix="regenerate"),
            "disable_form": CurrentPasswordForm(prefix="disable"), **extra}


def _enrolment_context(enrolment, form=None) -> dict:
    return {"enrolment": enrolment,
            "confirm_form": form or MfaConfirmForm(initial={"mfa_token": enrolment.mfa_token})}


@console_view
def account_mfa(request):
    """/account/mfa/: status; POST intent=begin|confirm|regenerate|disable."""
    enter_account(request, user_services.sandbox_of(request.user))
    user, ip = request.user, client_address(request)
    ctx: dict = {}
    status = 200
    if request.method == "POST":
        intent = request.POST.get("intent")
        if intent == "begin":
            try:
                ctx.update(_enrolment_context(mfa_services.mfa_enrol_begin(user=user)))
            except ServiceError as exc:
                messages.error(request, exc.description)
                return redirect("console:account-mfa")
        elif intent == "confirm":
            form = MfaConfirmForm(request.POST)
            enrolment = (mfa_services.mfa_enrolment_resume(user=user, mfa_token=request.POST.get("mfa_token", ""))
                         if form.is_valid() else None)
            if enrolment is None:
                messages.error(request, "That setup has expired. Start again.")
                return redirect("console:account-mfa")
            try:
                codes = mfa_services.mfa_enrol_confirm(user=user, mfa_token=enrolment.mfa_token,
                                                       otp=form.cleaned_data["code"], ip=ip)
            except ServiceError as exc:
                form_error(form, exc, {"otp": "code"})
                ctx.update(_enrolment_context(enrolment, form))
                status = 400
            else:
                ctx.update(recovery_codes=codes, just_enabled=True)
        elif intent in ("regenerate", "disable"):
            form = CurrentPasswordForm(request.POST, prefix=intent)
            if form.is_valid():
                try:
                    if intent == "regenerate":
                        ctx["recovery_codes"] = mfa_services.mfa_recovery_codes_regenerate(
                            user=user, current_password=form.cleaned_data["current_password"], ip=ip)
                    else:
                        mfa_services.mfa_disable(user=user, current_password=form.cleaned_data["current_password"],
                                                 ip=ip)
                        messages.success(request, "Two-step sign-in is off. You sign in with your password only.")
                        return redirect("console:account-mfa")
                except ServiceError as exc:
                    form_error(form, exc)
            if "recovery_codes" not in ctx:
                ctx.update({f"{intent}_form": form, "open_dialog": f"{intent}-dialog"})
                status = 400
        else:
            status = 400
    return render(request, "console/account_mfa.html", _context(request, **ctx), status=status)

