"""The console's integration form: Particle's webhook fields one by one, or the whole webhook as JSON.
Either way the body goes through integrations.validation, the API's own rules."""

from __future__ import annotations

import json

from django import forms

from integrations.validation import REQUEST_TYPES

BODY_KINDS = [("defaults", "Default fields (form-encoded; query for GET)"), ("json", "JSON"), ("form", "Form fields"),
              ("body", "Custom body")]
# The validator's field names → this form's fields, so a refusal shows on the control that caused it.
FIELD_OF = {"event": "event", "url": "url", "name": "name", "requestType": "request_type", "deviceID": "device_id",
            "json": "body_template", "form": "body_template", "body": "body_template", "query": "query",
            "headers": "headers", "auth": "auth_username", "responseTopic": "response_topic",
            "errorResponseTopic": "error_response_topic", "responseTemplate": "response_template",
            "noDefaults": "no_defaults", "rejectUnauthorized": "reject_unauthorized", "unchunked": "unchunked",
            "disabled": "disabled", "integration_type": "raw_json"}


class IntegrationForm(forms.Form):
    mode = forms.ChoiceField(choices=[("form", "Form"), ("json", "JSON")], initial="form", widget=forms.RadioSelect,
                             label="Edit as")
    raw_json = forms.CharField(required=False, label="Webhook JSON", widget=forms.Textarea(attrs={"rows": 14, "class": "mono"}),
                               help_text="The whole webhook in Particle's field names, as the API takes it.")
    name = forms.CharField(required=False, max_length=200)
    event = forms.CharField(required=False, max_length=64, label="Event name (prefix)",
                            help_text="Case-sensitive prefix: \"temp\" matches temp, temperature and temp/kitchen.")
    url = forms.CharField(required=False, max_length=2000, label="URL", help_text="May hold {{templates}}.")
    request_type = forms.ChoiceField(choices=[(t, t) for t in REQUEST_TYPES], initial="POST", label="Request type")
    device_id = forms.CharField(required=False, max_length=24, label="Only this device (id)")
    body_kind = forms.ChoiceField(choices=BODY_KINDS, initial="defaults", label="Request body")
    body_template = forms.CharField(required=False, label="Body template", widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}),
                                    help_text="JSON: an object or a template; form fields: a JSON object; custom: any text.")
    query = forms.CharField(required=False, label="Query parameters (JSON object)", widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}))
    headers = forms.CharField(required=False, label="Headers (JSON object)", widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}))
    auth_username = forms.CharField(required=False, label="Basic auth user")
    auth_password = forms.CharField(required=False, label="Basic auth password")
    response_topic = forms.CharField(required=False, label="Response topic")
    error_response_topic = forms.CharField(required=False, label="Error response topic")
    response_template = forms.CharField(required=False, label="Response template", widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}))
    no_defaults = forms.BooleanField(required=False, label="Leave out the default fields (noDefaults)")
    reject_unauthorized = forms.BooleanField(required=False, initial=True, label="Verify the receiver's TLS certificate")
    unchunked = forms.BooleanField(required=False, label="Publish the response as one event (unchunked)")
    disabled = forms.BooleanField(required=False, label="Disabled")

    def _object(self, name: str):
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            self.add_error(name, f"Not valid JSON: {exc}")
            return None
        return value

    def webhook_body(self) -> dict | None:
        """The API body this form describes, or None when the form itself has errors."""
        data = self.cleaned_data
        if data["mode"] == "json":
            value = self._object("raw_json")
            if value is None and not self.errors:
                self.add_error("raw_json", "Paste the webhook as a JSON object")
            if self.errors:
                return None
            if not isinstance(value, dict):
                self.add_error("raw_json", "The webhook must be a JSON object")
                return None
            return value
        body = {"integration_type": "Webhook", "name": data["name"], "event": data["event"], "url": data["url"],
                "requestType": data["request_type"], "deviceID": data["device_id"],
                "responseTopic": data["response_topic"], "errorResponseTopic": data["error_response_topic"],
                "responseTemplate": data["response_template"], "noDefaults": data["no_defaults"],
                "rejectUnauthorized": data["reject_unauthorized"], "unchunked": data["unchunked"],
                "disabled": data["disabled"]}
        kind, template = data["body_kind"], data["body_template"]
        if kind == "json":
            text = (template or "").strip()
            try:
                body["json"] = json.loads(text) if text.startswith("{") or text.startswith("[") else text
            except ValueError:
                body["json"] = text  # a string template (e.g. {"v": {{value}}}), checked by the validator
        elif kind == "form":
            body["form"] = self._object("body_template")
        elif kind == "body":
            body["body"] = template
        for key in ("query", "headers"):
            value = self._object(key)
            if value is not None:
                body[key] = value
        if data["auth_username"]:
            body["auth"] = {"username": data["auth_username"], "password": data["auth_password"]}
        return None if self.errors else body


def initial_for(hook) -> dict:
    """The form's values for an existing hook, both as fields and as JSON."""
    config = hook.config
    kind = next((k for k in ("json", "form", "body") if k in config), "defaults")
    template = config.get(kind, "")
    if kind in ("json", "form") and not isinstance(template, str):
        template = json.dumps(template, indent=2)
    whole = {"integration_type": hook.integration_type, "name": hook.name, "event": hook.event, **config}
    if hook.device_id:
        whole["deviceID"] = hook.device_id
    whole["disabled"] = hook.disabled
    return {
        "mode": "form", "raw_json": json.dumps(whole, indent=2), "name": hook.name, "event": hook.event,
        "url": config.get("url", ""), "request_type": config.get("requestType", "POST"), "device_id": hook.device_id,
        "body_kind": kind, "body_template": template,
        "query": json.dumps(config["query"]) if config.get("query") else "",
        "headers": json.dumps(config["headers"]) if config.get("headers") else "",
        "auth_username": (config.get("auth") or {}).get("username", ""),
        "auth_password": (config.get("auth") or {}).get("password", ""),
        "response_topic": config.get("responseTopic", ""), "error_response_topic": config.get("errorResponseTopic", ""),
        "response_template": config.get("responseTemplate", ""), "no_defaults": config.get("noDefaults", False),
        "reject_unauthorized": config.get("rejectUnauthorized", True), "unchunked": config.get("unchunked", False),
        "disabled": hook.disabled,
    }
