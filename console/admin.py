"""Admin site for support staff: every model searchable and filterable."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction

from console.models import (
    AccessToken, Account, AuditEntry, Invitation, MfaRecoveryCode, OAuthClient, OrgMembership, RefreshToken, User, UserMfa,
)
from console.scoping import Principal
from console.errors import ServiceError
from console.services import mfa as mfa_services
from console.services import users as user_services
from console.web.forms import StaffLoginForm

# Support staff sign in through the counted check too: /admin/login/ had no lockout at all.
admin.site.login_form = StaffLoginForm


class ReadOnlyAdmin(admin.ModelAdmin):
    """A model support staff may look up but not change: its rows are written by a service or a worker that
    keeps other state true beside them (the apps above use it for deliveries, hooks and usage counts)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "kind", "first_name", "last_name", "is_staff", "is_active", "date_joined"]
    list_filter = ["kind", "is_staff", "is_active", "business_account"]
    search_fields = ["email", "first_name", "last_name", "company_name", "friendly_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "kind", "friendly_name"]}),
        ("Profile", {"fields": ["first_name", "last_name", "company_name", "business_account"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    # Deleting a person goes through the same service as DELETE /v1/user (less the password): refused while they
    # own an organization or sandbox devices, and their devices, SIMs and tokens are released, not orphaned.
    # Django's own check would refuse everyone (each person's sandbox protects them); the confirmation page
    # shows the service's refusals instead, found by a dry run that is rolled back.
    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, _protected = super().get_deleted_objects(objs, request)
        refusals = []
        for user in objs:
            try:
                with transaction.atomic():
                    user_services.user_remove(user=user, by=Principal.for_user(request.user))
                    raise _DryRun
            except _DryRun:
                pass
            except ServiceError as exc:
                refusals.append(f"{user.email}: {exc.description}")
        return deleted, counts, perms_needed, refusals

    def delete_model(self, request, obj):
        user_services.user_remove(user=obj, by=Principal.for_user(request.user))

    def delete_queryset(self, request, queryset):
        with transaction.atomic():  # all or none
            for user in queryset.order_by("pk"):
                user_services.user_remove(user=user, by=Principal.for_user(request.user))


class _DryRun(Exception):
    """Rolls back the trial deletion of UserAdmin.get_deleted_objects."""


class OrgMembershipInline(admin.TabularInline):
    model = OrgMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "slug", "owner", "created_at"]
    list_filter = ["kind", "created_at"]
    search_fields = ["name", "slug", "owner__email"]
    autocomplete_fields = ["owner"]
    inlines = [OrgMembershipInline]


@admin.register(OrgMembership)
class OrgMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role", "created_at"]
    list_filter = ["role", "account__kind"]
    search_fields = ["user__email", "account__name", "account__slug"]
    autocomplete_fields = ["user", "account"]


@admin.register(OAuthClient)
class OAuthClientAdmin(admin.ModelAdmin):
    list_display = ["client_id", "name", "type", "owner", "product_id", "created_at"]
    list_filter = ["type", "created_at"]
    search_fields = ["client_id", "name", "owner__email", "product_id"]
    readonly_fields = ["secret_hash"]
    autocomplete_fields = ["owner", "created_by"]


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "kind", "user", "client_name", "product_id", "created_at", "expires_at", "last_used_at"]
    list_filter = ["kind", "created_at", "expires_at"]
    search_fields = ["prefix", "user__email", "client_name", "product_id"]
    readonly_fields = ["token_hash", "prefix", "created_at", "last_used_at"]
    autocomplete_fields = ["user", "client", "account"]


@admin.register(RefreshToken)
class RefreshTokenAdmin(admin.ModelAdmin):
    list_display = ["access_token", "expires_at", "used_at"]
    list_filter = ["expires_at", "used_at"]
    search_fields = ["access_token__prefix", "access_token__user__email"]
    readonly_fields = ["token_hash"]
    raw_id_fields = ["access_token"]


@admin.register(UserMfa)
class UserMfaAdmin(admin.ModelAdmin):
    """Who has MFA. The secret is never shown; deleting a row is the reset for someone locked out (it drops
    their recovery codes too and writes an audit row)."""

    list_display = ["user", "enabled_at", "created_at", "last_used_at"]
    list_filter = ["enabled_at", "last_used_at"]
    search_fields = ["user__email"]
    fields = ["user", "created_at", "enabled_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        mfa_services.mfa_reset(user=obj.user, principal=Principal.for_user(request.user))

    def delete_queryset(self, request, queryset):
        for row in queryset.select_related("user"):
            self.delete_model(request, row)


@admin.register(MfaRecoveryCode)
class MfaRecoveryCodeAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "used_at"]
    list_filter = ["used_at", "created_at"]
    search_fields = ["user__email"]
    fields = ["user", "created_at", "used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "action", "target", "account", "product_id"]
    list_filter = ["action", "created_at"]
    search_fields = ["actor_label", "action", "target", "product_id"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only: an invitation is made and revoked on the team pages; its token exists only in the mail."""

    list_display = ["email", "where", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role", "created_at"]
    search_fields = ["email", "where", "invited_by__email"]
    exclude = ["token_hash", "salt"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
