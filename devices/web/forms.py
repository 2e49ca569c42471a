"""Console forms for devices, groups, SIM cards and customers. Shape only: the services in `devices/`
decide names, limits and rights, and their refusals come back as field errors (`console.web.access.form_error`)."""

from __future__ import annotations

from django import forms

from devices.identifiers import COLOR, DEVICE_NAME, GROUP_NAME, decode_upload, is_device_id
from devices.services import importing

# The forms check the services' rules (devices/identifiers.py) too, so a form can say so before posting.
PER_PAGE_CHOICES = (25, 50, 100, 250)


def _group_name(value: str) -> str:
    value = (value or "").strip()
    if value and not GROUP_NAME.fullmatch(value):
        raise forms.ValidationError("Use lowercase letters, digits, - and _ only (e.g. field-test).")
    return value


# --- the device list -----------------------------------------------------------------------------------


class DeviceIdsField(forms.MultipleChoiceField):
    """Ticked rows: any 24-hex ids (the service checks that each is a device of the product)."""

    def valid_value(self, value) -> bool:
        return is_device_id(str(value))

    def clean(self, value):
        return sorted({v.lower() for v in super().clean(value)})


class BulkForm(forms.Form):
    """The selected rows of the device list and what to do with them."""

    ACTIONS = [("add_group", "Add to group"), ("remove_group", "Remove from group"), ("remove", "Remove from product")]

    action = forms.ChoiceField(choices=ACTIONS)
    devices = DeviceIdsField(error_messages={"required": "Select at least one device."})
    # One field per dialog: both dialogs post through the same form (the ticked rows belong to it).
    group_add = forms.CharField(required=False, max_length=100)
    group_remove = forms.CharField(required=False, max_length=100)

    def clean(self):
        data = super().clean()
        action = data.get("action")
        data["group"] = ""
        if action in ("add_group", "remove_group"):
            key = "group_add" if action == "add_group" else "group_remove"
            try:
                data["group"] = _group_name(data.get(key, ""))
            except forms.ValidationError as exc:
                self.add_error(key, exc)
            else:
                if not data["group"]:
                    self.add_error(key, "Choose a group.")
        if len(data.get("devices") or []) > 1000:
            self.add_error("devices", "Select at most 1,000 devices at a time.")
        return data


# --- one device ------------------------------------------------------------------------------------------


class DeviceNameForm(forms.Form):
    name = forms.CharField(required=False, max_length=63, label="Name",
                           help_text="Letters, digits, dashes and underscores. Empty clears the name.")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name and not DEVICE_NAME.fullmatch(name):
            raise forms.ValidationError("Use letters, digits, dashes and underscores only (at most 63).")
        return name


class DeviceNotesForm(forms.Form):
    notes = forms.CharField(required=False, max_length=750, label="Notes", strip=True,
                            widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Where it is installed, what was "
                                                                                   "replaced, who to call…"}),
                            help_text="Visible to everyone on the product team. At most 750 characters.")


class DeviceDevelopmentForm(forms.Form):
    development = forms.BooleanField(required=False, label="Development device",
                                     widget=forms.CheckboxInput(attrs={"data-autosubmit": ""}),
                                     help_text="Development devices are skipped by firmware releases, so you can "
                                               "flash them by hand.")


class DeviceFirmwareForm(forms.Form):
    desired_firmware_version = forms.IntegerField(
        required=False, min_value=1, max_value=65535, label="Lock to firmware version",
        help_text="The device is told to run exactly this product firmware version. Empty unlocks it.",
        widget=forms.NumberInput(attrs={"placeholder": "Not locked"}))


class DeviceGroupsForm(forms.Form):
    groups = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Groups")
    new_group = forms.CharField(required=False, max_length=100, label="New group",
                                help_text="Lowercase letters, digits, - and _. It is created in the product.",
                                widget=forms.TextInput(attrs={"placeholder": "e.g. field-test"}))

    def __init__(self, *args, group_names: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["groups"].choices = [(n, n) for n in group_names]

    def clean_new_group(self) -> str:
        return _group_name(self.cleaned_data.get("new_group", ""))

    def names(self) -> list[str]:
        names = list(self.cleaned_data["groups"])
        if self.cleaned_data["new_group"]:
            names.append(self.cleaned_data["new_group"])
        return names


# --- import ----------------------------------------------------------------------------------------------


class ImportForm(forms.Form):
    file = forms.FileField(required=False, label="File",
                           help_text="Any text file: one device ID, serial number or ICCID per line (the file Particle "
                                     "emails for tray and reel orders works as is).")
    ids = forms.CharField(required=False, label="Or paste IDs", max_length=importing.MAX_FILE_BYTES,
                          widget=forms.Textarea(attrs={"rows": 6, "class": "mono",
                                                       "placeholder": "e00fce68…\ne00fce68…"}))
    import_sims = forms.BooleanField(required=False, initial=True, label="Import and activate SIM cards",
                                     help_text="Cellular devices with a built-in SIM: add the SIM to the product and "
                                               "activate it, so the device can connect.")
    claim_user = forms.ChoiceField(required=False, label="Claim devices to",
                                   help_text="Leaving product devices unclaimed is recommended.")

    def __init__(self, *args, team_emails: list[str] = (), cellular: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not cellular:  # a Wi-Fi product's devices have no SIM to import
            del self.fields["import_sims"]
        self.fields["claim_user"].choices = [("", "Nobody — leave them unclaimed (recommended)"),
                                             *((e, e) for e in team_emails)]

    def clean(self):
        data = super().clean()
        upload, pasted = data.get("file"), (data.get("ids") or "").strip()
        if upload and pasted:
            raise forms.ValidationError("Upload a file or paste IDs, not both.")
        if upload:
            if upload.size > importing.MAX_FILE_BYTES:
                self.add_error("file", f"The file is larger than {importing.MAX_FILE_BYTES // 1_000_000} MB.")
                return data
            try:
                data["text"] = decode_upload(upload.read())
            except ValueError as exc:
                self.add_error("file", str(exc))
        elif pasted:
            data["text"] = pasted
        else:
            raise forms.ValidationError("Choose a file, or paste device IDs.")
        return data


# --- groups ----------------------------------------------------------------------------------------------


class GroupForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Lowercase letters, digits, - and _ (e.g. beta-testers).")
    color = forms.CharField(max_length=7, initial="#0fa3b1", widget=forms.TextInput(attrs={"type": "color"}))
    description = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_name(self) -> str:
        name = _group_name(self.cleaned_data["name"])
        if not name:
            raise forms.ValidationError("This field is required.")
        return name

    def clean_color(self) -> str:
        color = self.cleaned_data["color"].strip()
        if not COLOR.fullmatch(color):
            raise forms.ValidationError("Use a hex colour like #34495e.")
        return color.lower()


# --- SIM cards -------------------------------------------------------------------------------------------


class SimStateForm(forms.Form):
    action = forms.ChoiceField(choices=[("activate", "Activate"), ("deactivate", "Deactivate"),
                                        ("reactivate", "Reactivate")])


# --- customers -------------------------------------------------------------------------------------------


class CustomerCreateForm(forms.Form):
    email = forms.CharField(max_length=254, label="Email",
                            widget=forms.TextInput(attrs={"placeholder": "customer@example.com", "autocomplete": "off"}),
                            help_text="Any unique id works; an email is usual.")
    password = forms.CharField(min_length=8, max_length=128, strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text="At least 8 characters.",
                               error_messages={"required": "Set a password, or tick “Shadow customer”."})
    no_password = forms.BooleanField(required=False, label="Shadow customer (no password)",
                                     help_text="Your server gets tokens for it with the product's OAuth client.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound and self.data.get(self.add_prefix("no_password")):
            self.fields["password"].required = False  # a shadow customer has none

    def clean(self):
        data = super().clean()
        if data.get("no_password") and data.get("password"):
            self.add_error("password", "A shadow customer has no password: clear it, or untick “Shadow customer”.")
        return data


class CustomerPasswordForm(forms.Form):
    email = forms.CharField(max_length=254, widget=forms.HiddenInput)
    password = forms.CharField(min_length=8, max_length=128, strip=False, label="New password",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
