"""Snapshots of what a refused request must not have written, and the device counters' invariant.

`team_state()` covers the account/product/team/client/token routes (tests/test_role_matrix.py);
`device_state()` covers the device, SIM, group, customer and claim routes (tests/test_role_matrix_devices.py,
tests/test_bad_input_devices.py). Compare a snapshot taken before a request with one taken after.
"""

from __future__ import annotations


def team_state() -> dict:
    """Everything an account, product, team or client route could write. `last_used_at` is left out: reads may
    touch it."""
    from console.models import (
        AccessToken, Account, AuditEntry, Invitation, MfaRecoveryCode, OAuthClient, OrgMembership, User, UserMfa,
    )
    from products.models import Product, ProductMembership

    return {
        "users": list(User.objects.order_by("pk").values_list("pk", "email", "kind", "friendly_name", "is_active",
                                                              "first_name", "last_name", "company_name")),
        "accounts": list(Account.objects.order_by("pk").values_list("pk", "kind", "name", "slug", "owner_id")),
        "products": list(Product.objects.order_by("pk").values_list(
            "pk", "name", "slug", "description", "quarantine", "location_opt_in", "account_id", "platform_id")),
        "product_seats": list(ProductMembership.objects.order_by("pk").values_list(
            "pk", "product_id", "user_id", "role", "scopes")),
        "org_seats": list(OrgMembership.objects.order_by("pk").values_list("pk", "account_id", "user_id", "role",
                                                                             "scopes")),
        "clients": list(OAuthClient.objects.order_by("pk").values_list(
            "pk", "client_id", "name", "type", "scope", "redirect_uri", "product_id", "owner_id")),
        "tokens": list(AccessToken.objects.order_by("pk").values_list("pk", "token_hash", "kind", "scopes")),
        "mfa": list(UserMfa.objects.order_by("pk").values_list("pk", "user_id", "secret", "enabled_at", "last_step")),
        "recovery_codes": list(MfaRecoveryCode.objects.order_by("pk").values_list("pk", "code_hash", "used_at")),
        "invitations": list(Invitation.objects.order_by("pk").values_list(
            "pk", "email", "account_id", "product_id", "role", "accepted_at", "revoked_at")),
        "audit": AuditEntry.objects.count(),
    }


def device_state() -> dict:
    """Everything a device, SIM, group, customer or claim route could write (`last_used_at` of tokens is left
    out: reads may touch it)."""
    from console.models import AccessToken, AuditEntry, User
    from devices.models import ClaimCode, Customer, Device, DeviceGroupMembership, DeviceKey, ImportJob, SimCard
    from products.models import DeviceGroup, Product

    return {
        "devices": list(Device.objects.order_by("pk").values_list(
            "pk", "product_id", "owner_id", "customer_id", "name", "notes", "development", "quarantined", "denied",
            "desired_firmware_version", "firmware_updates_forced", "updated_at")),
        "memberships": sorted(DeviceGroupMembership.objects.values_list("group_id", "device_id")),
        "groups": list(DeviceGroup.objects.order_by("pk").values_list(
            "pk", "product_id", "name", "description", "color", "device_count")),
        "sims": list(SimCard.objects.order_by("pk").values_list(
            "pk", "device_id", "product_id", "user_id", "status", "mb_limit", "activations_count",
            "deactivations_count", "updated_at")),
        "customers": list(Customer.objects.order_by("pk").values_list("pk", "product_id", "email", "password")),
        "claim_codes": list(ClaimCode.objects.order_by("pk").values_list("pk", "code", "user_id", "customer_id",
                                                                         "product_id")),
        "products": list(Product.objects.order_by("pk").values_list("pk", "device_count", "account_id")),
        "tokens": list(AccessToken.objects.order_by("pk").values_list("pk", "token_hash", "kind")),
        "users": User.objects.count(),
        "import_jobs": ImportJob.objects.count(),
        "keys": [(pk, bytes(der), at) for pk, der, at in
                 DeviceKey.objects.order_by("pk").values_list("pk", "public_key", "updated_at")],
        "audit": AuditEntry.objects.count(),
    }


def assert_device_counts() -> None:
    """The stored counters equal fresh COUNT queries, for every product and every group."""
    from devices.models import Device, DeviceGroupMembership
    from products.models import DeviceGroup, Product

    for product in Product.objects.all():
        real = Device.objects.filter(product=product, quarantined=False, denied=False).count()
        assert product.device_count == real, f"{product.slug}: device_count {product.device_count} != {real} rows"
    for group in DeviceGroup.objects.all():
        real = DeviceGroupMembership.objects.filter(group=group).count()
        assert group.device_count == real, f"group {group.name}: device_count {group.device_count} != {real} rows"
