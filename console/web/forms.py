"""Input forms of the console's accounts half. They check shape only; the services decide the rest."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from console.clientaddr import client_address
from console.errors import InvalidGrant, LockedOut
from console.models import OAuthClient
from console.roles import KNOWN_SCOPES, Role
from console.selectors import mfa_enabled
from console.services import login as login_services
from console.services import mfa as mfa_services


class CountedSignIn:
    """A sign-in form's check through the same counted service as /oauth/token: people only, with the
    lockouts per address and per account (`console.services.login`)."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username and password:
            ip = client_address(self.request) if self.request else "unknown"
            try:
                self.user_cache = login_services.authenticate_password(username=username, password=password, ip=ip)
            except LockedOut as exc:
                raise forms.ValidationError(exc.description, code="locked_out")
            except InvalidGrant:
                raise forms.ValidationError("That email and password do not match an account.", code="invalid_login")
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class LoginForm(CountedSignIn, AuthenticationForm):
    """The console's sign-in."""

    username = forms.EmailField(label="Email", widget=forms.EmailInput(
        attrs={"autocomplete": "email", "autofocus": True, "placeholder": "you@example.com"}))
    password = forms.CharField(label="Password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class SignupForm(forms.Form):
    """The console's sign-up: shape only; `user_signup` checks the email and the password's strength."""

    email = forms.EmailField(label="Email", widget=forms.EmailInput(
        attrs={"autocomplete": "email", "autofocus": True, "placeholder": "you@example.com"}))
    password = forms.CharField(label="Password", strip=False, help_text="At least 8 characters, not a common one.",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    first_name = forms.CharField(label="First name", max_length=150, required=False,
                                 widget=forms.TextInput(attrs={"autocomplete": "given-name"}))
    last_name = forms.CharField(label="Last name", max_length=150, required=False,
                                widget=forms.TextInput(attrs={"autocomplete": "family-name"}))
    company_name = forms.CharField(label="Company", max_length=200, required=False,
                                   widget=forms.TextInput(attrs={"autocomplete": "organization"}))


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(label="Email", widget=forms.EmailInput(
        attrs={"autocomplete": "email", "autofocus": True, "placeholder": "you@example.com"}))


class NewPasswordForm(forms.Form):
    password = forms.CharField(label="New password", strip=False, help_text="At least 8 characters, not a common one.",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}))


class ProfileForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    company_name = forms.CharField(label="Company", max_length=200, required=False)


def _current_password(label: str = "Current password") -> forms.CharField:
    return forms.CharField(label=label, strip=False,
                           widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class EmailChangeForm(forms.Form):
    email = forms.EmailField(label="New email", widget=forms.EmailInput(attrs={"autocomplete": "email"}),
                             help_text="You sign in with it; your products, devices and tokens stay yours.")
    current_password = _current_password()


class PasswordChangeForm(forms.Form):
    current_password = _current_password()
    password = forms.CharField(label="New password", strip=False, help_text="At least 8 characters, not a common one.",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    invalidate_tokens = forms.BooleanField(label="Also revoke my access tokens", required=False,
                                           help_text="Your other console sessions end either way.")


class AccountDeleteForm(forms.Form):
    password = _current_password("Your password")


class StaffLoginForm(CountedSignIn, AdminAuthenticationForm):
    """/admin/login/: the same counted check, then Django's own rule that only staff may enter, then the
    code of a staff member with MFA (the admin signs a session in as fully as the console does, so it asks
    for the second factor too, on the same page)."""

    otp = forms.CharField(label="Authentication code", required=False, max_length=40, strip=True,
                          help_text="Only if you set up two-step sign-in: the code from your app, or a recovery code.",
                          widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}))

    def clean(self):
        super().clean()
        user = self.user_cache
        if user is not None and not self.errors and mfa_enabled(user):
            code = self.cleaned_data.get("otp")
            if not code:
                raise forms.ValidationError("Enter the code from your authenticator app (or a recovery code).",
                                            code="mfa_required")
            ip = client_address(self.request) if self.request else "unknown"
            try:
                mfa_services.mfa_verify(user=user, code=code, ip=ip)
            except (InvalidGrant, LockedOut) as exc:
                raise forms.ValidationError(exc.description, code="invalid_otp")
        return self.cleaned_data


class MfaCodeForm(forms.Form):
    """The second step of signing in."""

    code = forms.CharField(label="Authentication code", max_length=40, strip=True,
                           help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True,
                                                         "inputmode": "numeric", "spellcheck": "false"}))


class MfaConfirmForm(forms.Form):
    """Confirming enrolment: the pending enrolment's token and a first code from the new secret."""

    mfa_token = forms.CharField(widget=forms.HiddenInput, max_length=100)
    code = forms.CharField(label="Code from your app", max_length=12, strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                         "spellcheck": "false"}))


class CurrentPasswordForm(forms.Form):
    current_password = forms.CharField(label="Current password", strip=False,
                                       widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class OrgCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Shown in the account switcher and to your team.")
    slug = forms.CharField(max_length=100, required=False, label="Slug",
                           help_text="Used in URLs and the API (/v1/orgs/<slug>). Leave empty to derive it from the name.")


EXPIRY_CHOICES = [
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("2592000", "30 days"),
    ("7776000", "90 days"),
    ("0", "Never expires"),
]


class TokenCreateForm(forms.Form):
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="7776000", label="Expires after",
                                   help_text="The token can do everything your account can. Prefer short lifetimes.")


class ClientCreateForm(forms.Form):
    SCOPE_CHOICES = [
        ("", "Full access (as the product)"),
        ("customers:create", "Create customers only (two-legged shadow customers)"),
    ]

    name = forms.CharField(max_length=200, help_text="A name that tells you where this client is used.")
    type = forms.ChoiceField(choices=OAuthClient.Type.choices, initial=OAuthClient.Type.INSTALLED,
                             widget=forms.RadioSelect, label="Type")
    redirect_uri = forms.URLField(required=False, label="Redirect URI",
                                  help_text="Web clients only: where the browser returns after authorizing.",
                                  assume_scheme="https")
    scope = forms.ChoiceField(choices=SCOPE_CHOICES, required=False, label="Scope")

    def __init__(self, *args, with_scope: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not with_scope:
            del self.fields["scope"]


ROLE_CHOICES = [(r.value, r.label) for r in (Role.ADMINISTRATOR, Role.DEVELOPER, Role.SUPPORT, Role.VIEWER)]


class InviteForm(forms.Form):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"placeholder": "teammate@example.com"}),
                                help_text="Someone without a Cyan account gets an emailed link to sign up and join.")
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.DEVELOPER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


def _scope_group(scope: str) -> str:
    head = scope.split(":", 1)[0].split(".", 1)[0]
    return head.replace("_", " ").capitalize()


def _scope_groups() -> list[tuple[str, list[str]]]:
    """Scopes grouped by resource for the API user form; one-scope resources share an "Other" group."""
    groups: dict[str, list[str]] = {}
    for scope in sorted(KNOWN_SCOPES):
        groups.setdefault(_scope_group(scope), []).append(scope)
    other = [s for scopes in groups.values() if len(scopes) == 1 for s in scopes]
    out = [(label, scopes) for label, scopes in groups.items() if len(scopes) > 1]
    return out + ([("Other", other)] if other else [])


SCOPE_GROUPS = _scope_groups()


class ApiUserForm(forms.Form):
    friendly_name = forms.CharField(max_length=200, label="Friendly name",
                                    widget=forms.TextInput(attrs={"placeholder": "Fleet dashboard server"}))
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in sorted(KNOWN_SCOPES)],
                                       widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "Choose at least one scope."})
