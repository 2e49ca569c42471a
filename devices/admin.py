"""Admin for the registry and fleet: support staff register manufactured devices here (or with
`manage.py manufacture`), look devices and SIMs up, lift quarantine and release SIMs."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from console.errors import ServiceError
from console.scoping import Principal
from devices.keys import public_key_der
from devices.models import (ClaimCode, Customer, Device, DeviceGroupMembership, DeviceKey, DeviceTransfer, ImportJob,
                            Onboarding, SerialNumber, SimCard, SimUsage)
from devices.services.importing import device_import
from devices.services.keys import device_key_upload, key_fingerprint
from devices.services.registry import device_register, registry_device_id, registry_iccid, registry_serial
from devices.services.sims import sim_release


def _checked(parse, *args, **kwargs):
    """A registry rule's verdict as a form error."""
    try:
        return parse(*args, **kwargs)
    except ServiceError as exc:
        raise forms.ValidationError(exc.description)


class DeviceForm(forms.ModelForm):
    device_secret = forms.CharField(required=False, help_text="Set or replace the device secret (stored hashed).")
    iccid = forms.CharField(required=False, label="ICCID", help_text="Cellular devices: the embedded SIM's ICCID.")

    class Meta:
        model = Device
        fields = ["id", "platform", "serial_number", "imei", "mac_wifi", "product", "name", "notes", "owner",
                  "customer", "development", "quarantined", "denied"]

    def clean_id(self):
        return _checked(registry_device_id, self.cleaned_data["id"])

    def clean_serial_number(self):
        return _checked(registry_serial, self.cleaned_data.get("serial_number"), device_id=self.instance.pk)

    def clean_iccid(self):
        return _checked(registry_iccid, self.cleaned_data.get("iccid"))

    def save(self, commit=True):
        return device_register(device=super().save(commit=False), secret=self.cleaned_data.get("device_secret") or "",
                               iccid=self.cleaned_data.get("iccid") or "")


class GroupInline(admin.TabularInline):
    model = DeviceGroupMembership
    extra = 0
    autocomplete_fields = ["group"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    form = DeviceForm
    list_display = ["id", "name", "platform", "serial_number", "product", "owner", "customer", "online",
                    "quarantined", "denied", "last_heard"]
    list_filter = ["platform", "online", "quarantined", "denied", "development"]
    search_fields = ["=id", "serial_number", "name", "imei", "owner__email", "customer__email", "product__slug"]
    autocomplete_fields = ["product", "owner", "customer"]
    readonly_fields = ["secret_hash", "manufactured_at", "updated_at", "last_heard", "last_ip_address"]
    inlines = [GroupInline]
    actions = ["lift_quarantine"]
    show_full_result_count = False  # counting a million rows per page view is wasted work

    def get_readonly_fields(self, request, obj=None):
        # A device's id is its identity: editing it would save a second device, not rename this one.
        return [*self.readonly_fields, "id"] if obj is not None else self.readonly_fields

    @admin.action(description="Lift quarantine (approve into its product)")
    def lift_quarantine(self, request, queryset):
        principal = Principal.for_user(request.user)
        approved = 0
        for device in queryset.filter(quarantined=True).select_related("product"):
            report = device_import(principal=principal, product=device.product, values=[(1, device.id)])
            approved += len(report.updated_ids)
        self.message_user(request, f"Approved {approved} device(s).", messages.SUCCESS)


class DeviceKeyForm(forms.ModelForm):
    public_key_pem = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "cols": 70}), label="Public key (PEM)",
        help_text="The device's RSA public key (-----BEGIN PUBLIC KEY----- or -----BEGIN RSA PUBLIC KEY-----); "
                  "it replaces the key the gateway checks at the device's next handshake.")

    class Meta:
        model = DeviceKey
        fields = ["device"]

    def clean_public_key_pem(self):
        text = self.cleaned_data["public_key_pem"]
        _checked(public_key_der, text)
        return text


@admin.register(DeviceKey)
class DeviceKeyAdmin(admin.ModelAdmin):
    """Devices registered in the admin have no key: support staff paste the one the device was made with here
    (owners can also upload it with `particle keys send`, POST /v1/provisioning/:id)."""

    form = DeviceKeyForm
    list_display = ["device", "algorithm", "fingerprint", "updated_at"]
    list_filter = ["algorithm"]
    search_fields = ["=device__id"]
    autocomplete_fields = ["device"]
    readonly_fields = ["algorithm", "fingerprint", "created_at", "updated_at"]

    @admin.display(description="SHA-256 of the public key")
    def fingerprint(self, obj):
        return key_fingerprint(bytes(obj.public_key)) if obj and obj.public_key else "-"

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "device"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        # The same service as the API: validated, audited, the old key replaced.
        saved = device_key_upload(principal=Principal.for_user(request.user), device=obj.device,
                                  public_key=form.cleaned_data["public_key_pem"])
        obj.public_key, obj.created_at, obj.updated_at = saved.public_key, saved.created_at, saved.updated_at


@admin.register(DeviceTransfer)
class DeviceTransferAdmin(admin.ModelAdmin):
    list_display = ["device", "requested_by", "owner", "state", "created_at", "decided_at"]
    list_filter = ["state"]
    search_fields = ["=device__id", "requested_by__email", "owner__email"]
    list_select_related = ["device", "requested_by", "owner"]
    readonly_fields = ["device", "requested_by", "owner", "created_at", "decided_at"]


@admin.register(SerialNumber)
class SerialNumberAdmin(admin.ModelAdmin):
    """Read-only: serials are set where the device is (its change form keeps this map in step)."""

    list_display = ["serial", "device", "platform"]
    list_filter = ["device__platform"]
    search_fields = ["serial", "=device__id"]
    list_select_related = ["device"]

    @admin.display(description="Platform")
    def platform(self, obj):
        return obj.device.platform_id

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a device without its row would show a serial that no lookup finds


@admin.register(SimCard)
class SimCardAdmin(admin.ModelAdmin):
    list_display = ["iccid", "status", "device", "product", "user", "carrier", "last_activated_on"]
    list_filter = ["status", "carrier"]
    search_fields = ["iccid", "device__id", "product__slug", "user__email", "msisdn"]
    autocomplete_fields = ["device", "product", "user"]
    actions = ["release"]

    @admin.action(description="Release (deactivate and return to the registry)")
    def release(self, request, queryset):
        principal = Principal.for_user(request.user)
        for sim in queryset:
            sim_release(principal=principal, sim=sim)
        self.message_user(request, f"Released {queryset.count()} SIM(s).", messages.SUCCESS)


@admin.register(SimUsage)
class SimUsageAdmin(admin.ModelAdmin):
    list_display = ["sim", "date", "mbs_used"]
    list_filter = ["date"]
    search_fields = ["sim__iccid"]
    raw_id_fields = ["sim"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["email", "product", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["email", "product__slug", "product__name"]
    autocomplete_fields = ["product"]
    exclude = ["password"]


@admin.register(ClaimCode)
class ClaimCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "user", "customer", "product", "expires_at", "used_at"]
    list_filter = ["expires_at"]
    search_fields = ["code", "user__email", "customer__email"]
    raw_id_fields = ["user", "customer", "product"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "state", "total", "created_by", "created_at", "finished_at"]
    list_filter = ["state", "created_at"]
    search_fields = ["product__slug", "created_by__email"]
    readonly_fields = ["lines", "report", "error"]
    raw_id_fields = ["product", "created_by"]


@admin.register(DeviceGroupMembership)
class DeviceGroupMembershipAdmin(admin.ModelAdmin):
    list_display = ["device", "group"]
    list_filter = ["group__product"]
    search_fields = ["device__id", "group__name"]
    raw_id_fields = ["device", "group"]


@admin.register(Onboarding)
class OnboardingAdmin(admin.ModelAdmin):
    """Read-only: each connection's onboarding request and the worker's verdict, for support staff asking why
    a device was refused. Workers write these rows; an edit here would bypass the claim on them."""

    list_display = ["device", "state", "outcome", "reason", "gateway", "hello_product_id", "created_at",
                    "decided_at"]
    list_filter = ["state", "outcome"]
    search_fields = ["=device__id", "reason"]
    list_select_related = ["device"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
