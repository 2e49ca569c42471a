"""API views for people: sign-up (`/v1/users`), password reset, and the signed-in user (`/v1/user`) with
its multi-factor authentication."""

from __future__ import annotations

from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console import validation
from console.api.base import body, client_ip, require_user
from console.api.serializers import user_body
from console.errors import ValidationFailed
from console.hooks import user_device_counts
from console.selectors import mfa_enabled
from console.services import mfa as mfa_services
from console.services import password_reset
from console.services import users as user_services


class SignupView(APIView):
    """POST /v1/users — api-js `createUser`: `{username, password, account_info, utm}` → 200 `{ok: true}`."""

    authentication_classes: list = []  # api-js sends its default Bearer token on every call; it means nothing here
    permission_classes = [AllowAny]

    def post(self, request):
        user_services.user_signup(**_signup_fields(body(request)))
        return Response({"ok": True})


def _signup_fields(data: dict) -> dict:
    info = data.get("account_info")
    if info is None:
        info = {}
    if not isinstance(info, dict):
        raise ValidationFailed("account_info must be an object", field="account_info")
    return {
        "email": data.get("username"),
        "password": data.get("password"),
        "first_name": info.get("first_name", ""),
        "last_name": info.get("last_name", ""),
        "company_name": info.get("company_name", ""),
        "business_account": validation.boolean(info.get("business_account"), field="account_info.business_account",
                                                default=False),
        "invitation": data.get("invitation"),  # Cyan: the token of a team invitation's link
    }  # `utm` (marketing attribution) is accepted and not kept


class PasswordResetView(APIView):
    """POST /v1/user/password-reset `{username}` mails a link (api-js `resetPassword`); PUT `{token, password}`
    sets the new password. No token is read: the email, then the link's token, is the request."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        password_reset.password_reset_request(email=body(request).get("username"))
        return Response({"ok": True, "message": password_reset.SENT_MESSAGE})

    def put(self, request):
        data = body(request)
        password_reset.password_reset_complete(token=data.get("token"), password=data.get("password"))
        return Response({"ok": True, "message": "User's password updated."})


class UserView(APIView):
    """GET|PUT|DELETE /v1/user."""

    def get(self, request):
        require_user(request.auth)
        wifi, cellular = user_device_counts(request.auth.user)
        return Response(user_body(request.auth.user, wifi_devices=wifi, cellular_devices=cellular,
                                  mfa_enabled=mfa_enabled(request.auth.user)))

    def delete(self, request):
        """api-js `deleteUser({password})`."""
        require_user(request.auth)
        user_services.user_delete(user=request.auth.user, password=body(request).get("password"),
                                  ip=client_ip(request))
        return Response({"ok": True, "message": "User's account has been deleted."})

    def put(self, request):
        require_user(request.auth)
        return Response(user_services.user_update(user=request.auth.user, ip=client_ip(request),
                                                  **_user_fields(body(request))))


class MfaEnableView(APIView):
    """GET /v1/user/mfa-enable starts enrolment (api-js `enableMfa`); POST confirms it with a code
    (`confirmMfa`) and answers the recovery codes, once."""

    def get(self, request):
        require_user(request.auth)
        enrolment = mfa_services.mfa_enrol_begin(user=request.auth.user)
        return Response({"mfa_token": enrolment.mfa_token, "qr_url": enrolment.qr_data_uri,
                         "secret": enrolment.secret})

    def post(self, request):
        require_user(request.auth)
        data = body(request)
        codes = mfa_services.mfa_enrol_confirm(
            user=request.auth.user, mfa_token=validation.text(data.get("mfa_token"), field="mfa_token", max_length=100),
            otp=validation.text(data.get("otp"), field="otp", max_length=40), ip=client_ip(request),
            invalidate_tokens=validation.boolean(data.get("invalidate_tokens"), field="invalidate_tokens",
                                                 default=False),
            keep_token=request.auth.token)
        return Response({"enrolled": True, "tokens": codes})


class MfaDisableView(APIView):
    """PUT /v1/user/mfa-disable `{current_password}` (api-js `disableMfa`)."""

    def put(self, request):
        require_user(request.auth)
        mfa_services.mfa_disable(user=request.auth.user, current_password=body(request).get("current_password"),
                                 ip=client_ip(request))
        return Response({"ok": True})


def _user_fields(data: dict) -> dict:
    """PUT /v1/user's body (api-js `changeUsername`, `changeUserPassword`; `account_info` as an object or in
    bracket form) as `user_update`'s arguments."""
    out: dict = {}
    info = data.get("account_info")
    if info is not None:
        if not isinstance(info, dict):
            raise ValidationFailed("account_info must be an object", field="account_info")
        out.update({k: info[k] for k in ("first_name", "last_name", "company_name") if k in info})
        if "business_account" in info:
            out["business_account"] = validation.boolean(info["business_account"],
                                                         field="account_info.business_account", default=False)
    for key in ("password", "username"):
        if key in data:
            out[key] = data[key]
    out["current_password"] = data.get("current_password")
    out["invalidate_tokens"] = validation.boolean(data.get("invalidate_tokens"), field="invalidate_tokens",
                                                  default=False)
    return out
