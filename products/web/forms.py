"""Console forms for products. Shape only; `products.services` decides names, platforms and rights."""

from __future__ import annotations

from django import forms

from products.selectors import platform_list


class ProductCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Unique across Cyan. You can rename it later in Settings.",
                           widget=forms.TextInput(attrs={"placeholder": "Asset Tracker"}))
    platform_id = forms.TypedChoiceField(coerce=int, label="Device type",
                                         help_text="Every device in a product is of this one platform; it cannot change.")
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        groups: dict[str, list[tuple[int, str]]] = {}
        for p in platform_list():
            groups.setdefault(p.get_connectivity_display(), []).append((p.pk, f"{p.name} ({p.pk})"))
        self.fields["platform_id"].choices = [("", "Choose a device type…"),
                                              *((label, opts) for label, opts in sorted(groups.items()))]


class ProductSettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    quarantine = forms.TypedChoiceField(
        coerce=lambda v: v == "quarantine", widget=forms.RadioSelect, label="Unknown devices",
        choices=[("quarantine", "Quarantine — hold them until a team member approves"),
                 ("approve", "Auto-approve — add them to the product straight away")],
        help_text="What happens when a device that is not in the product presents this product's id.")
    location_opt_in = forms.BooleanField(required=False, label="Store device locations",
                                         help_text="Keep the location devices report, for maps and the Location API.")

    @classmethod
    def initial_for(cls, product) -> dict:
        return {"name": product.name, "description": product.description,
                "quarantine": "quarantine" if product.quarantine else "approve",
                "location_opt_in": product.location_opt_in}

    def service_data(self) -> dict:
        """`products.services.product_update`'s arguments."""
        d = self.cleaned_data
        return {"name": d["name"], "description": d["description"], "quarantine": d["quarantine"],
                "location_opt_in": d["location_opt_in"]}
