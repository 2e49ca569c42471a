"""Admin for products, with the two support actions: transfer a product to another user's sandbox, and
move a product into an organization. Both go through `products.services.product_move`."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from console.errors import ServiceError
from console.models import Account, User
from console.scoping import Principal
from console.services.users import sandbox_of
from products.models import DeviceGroup, Platform, Product, ProductMembership
from products.services import product_delete, product_move


class ProductMembershipInline(admin.TabularInline):
    model = ProductMembership
    extra = 0
    autocomplete_fields = ["user"]


class TransferForm(forms.Form):
    email = forms.EmailField(label="New owner's email", help_text="The product moves into this user's sandbox.")

    def clean_email(self):
        user = User.objects.filter(email=self.cleaned_data["email"].lower(), kind=User.Kind.HUMAN).first()
        if user is None:
            raise forms.ValidationError("No user has that email.")
        return user


class MoveToOrgForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Account.objects.filter(kind=Account.Kind.ORGANIZATION))


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "slug", "platform", "account", "quarantine", "created_at"]
    list_filter = ["platform", "account__kind", "quarantine", "created_at"]
    search_fields = ["name", "slug", "=id", "account__name", "account__slug", "account__owner__email"]
    autocomplete_fields = ["account", "created_by"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ProductMembershipInline]
    actions = ["transfer_to_user", "move_into_organization"]

    def delete_model(self, request, obj):
        # Through the service: its OAuth clients, product tokens and API users go with it.
        product_delete(principal=Principal.for_user(request.user), product=obj, as_staff=True)

    def delete_queryset(self, request, queryset):
        principal = Principal.for_user(request.user)
        for product in queryset:  # one at a time: Product.delete() waits for a running import of that product
            product_delete(principal=principal, product=product, as_staff=True)

    def _run(self, request, queryset, form_class, title, target_of, action_name):
        form = form_class(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            target = target_of(form.cleaned_data)
            principal = Principal.for_user(request.user)
            moved = 0
            for product in queryset:
                try:
                    product_move(principal=principal, product=product, to_account=target)
                    moved += 1
                except ServiceError as exc:
                    self.message_user(request, f"{product.name}: {exc.description}", messages.ERROR)
            if moved:
                self.message_user(request, f"Moved {moved} product(s) to {target}.", messages.SUCCESS)
            return None
        return TemplateResponse(request, "admin/products/product/move.html", {
            **self.admin_site.each_context(request), "title": title, "form": form, "products": queryset,
            "action": action_name, "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })

    @admin.action(description="Transfer to another user's sandbox")
    def transfer_to_user(self, request, queryset):
        return self._run(request, queryset, TransferForm, "Transfer products to another owner",
                         lambda data: sandbox_of(data["email"]), "transfer_to_user")

    @admin.action(description="Move into an organization")
    def move_into_organization(self, request, queryset):
        return self._run(request, queryset, MoveToOrgForm, "Move products into an organization",
                         lambda data: data["organization"], "move_into_organization")


@admin.register(ProductMembership)
class ProductMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "product", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "product__name", "product__slug"]
    autocomplete_fields = ["user", "product"]


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "slug", "connectivity", "generation", "deprecated"]
    list_filter = ["connectivity", "generation", "deprecated"]
    search_fields = ["name", "slug", "=id"]


@admin.register(DeviceGroup)
class DeviceGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "product", "device_count", "color", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["name", "product__slug", "product__name"]
    autocomplete_fields = ["product"]
