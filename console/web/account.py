"""The console's account page (`/account/`): profile, email, password, and deleting the account. Each form
calls the same service as `PUT`/`DELETE /v1/user`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render

from console.clientaddr import client_address
from console.errors import ServiceError
from console.selectors import mfa_status
from console.services import users as user_services
from console.web.access import console_view, form_error
from console.web.forms import AccountDeleteForm, EmailChangeForm, PasswordChangeForm, ProfileForm

FORMS = {"profile": ProfileForm, "email": EmailChangeForm, "password": PasswordChangeForm,
         "delete": AccountDeleteForm}
# The services' field names, as these forms name them.
FIELDS = {"username": "email", "first_name": "first_name", "last_name": "last_name", "company_name": "company_name"}


@console_view
def account_page(request):
    user = request.user
    # Four forms on one page: each its own element ids, so every label names its own form's field.
    forms = {"profile": ProfileForm(initial={"first_name": user.first_name, "last_name": user.last_name,
                                             "company_name": user.company_name}, auto_id="profile-%s"),
             "email": EmailChangeForm(auto_id="email-%s"), "password": PasswordChangeForm(auto_id="password-%s"),
             "delete": AccountDeleteForm(auto_id="delete-%s")}
    status = 200
    if request.method == "POST":
        intent = request.POST.get("intent", "")
        if intent not in FORMS:
            return HttpResponseBadRequest("Unknown action")
        form = forms[intent] = FORMS[intent](request.POST, auto_id=f"{intent}-%s")
        if form.is_valid():
            try:
                done = _act(request, intent, form.cleaned_data)
            except ServiceError as exc:
                form_error(form, exc, FIELDS)
            else:
                return done
        status = 400
    return render(request, "console/account.html", {"forms": forms, "mfa": mfa_status(user), "open_dialog": "delete-dialog"
                  if request.method == "POST" and request.POST.get("intent") == "delete" else ""}, status=status)


def _act(request, intent: str, data: dict):
    user, ip = request.user, client_address(request)
    if intent == "profile":
        user_services.user_update(user=user, ip=ip, **data)
        messages.success(request, "Your profile was saved.")
    elif intent == "email":
        user_services.user_update(user=user, ip=ip, username=data["email"],
                                  current_password=data["current_password"])
        messages.success(request, f"You now sign in as {user.email}.")
    elif intent == "password":
        user_services.user_update(user=user, ip=ip, password=data["password"],
                                  current_password=data["current_password"],
                                  invalidate_tokens=data["invalidate_tokens"])
        update_session_auth_hash(request, user)  # this session stays; every other one ends with the old hash
        messages.success(request, "Your password was changed. Other sessions were signed out"
                         + (" and your access tokens revoked." if data["invalidate_tokens"] else "."))
    else:
        user_services.user_delete(user=user, password=data["password"], ip=ip)
        logout(request)
        messages.success(request, "Your account was deleted.")
        return redirect("console:login")
    return redirect("console:account")
