"""Particle's request bodies for the device routes, parsed into the typed arguments the services take. The
services then apply the rules (name shapes, limits, rights); a body that is not even the right shape is a
400 here, naming the field."""

from __future__ import annotations

from console import validation
from console.api.base import body
from console.errors import ValidationFailed
from console.validation import UNSET
from devices.identifiers import decode_upload, split_lines
from devices.services import importing


def _version(value: object) -> int | None:
    """`desired_firmware_version`: a whole number, or null / "" / "null" to unlock (api-js sends null)."""
    if value in (None, "", "null"):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise ValidationFailed("desired_firmware_version must be a whole number or null",
                               field="desired_firmware_version")


def device_update_fields(data: dict) -> dict:
    """PUT /v1/devices/:id and /v1/products/:p/devices/:id: the fields present, typed; absent ones stay out."""
    out: dict = {}
    for key in ("name", "notes"):
        if key in data:
            out[key] = data[key]
    for key in ("development", "firmware_updates_forced", "flash", "signal"):
        if key in data:
            out[key] = validation.boolean(data[key], field=key)
    if "desired_firmware_version" in data:
        out["desired_firmware_version"] = _version(data["desired_firmware_version"])
    if "groups" in data:
        out["groups"] = validation.string_list(data["groups"], field="groups", what="group names")
    return out


def _file_lines(request) -> list[tuple[int, str]] | None:
    """The lines of an uploaded file (any part name and filename), or None when the request has none."""
    files = list(request.FILES.values())
    if not files:
        return None
    upload = files[0]
    if upload.size > importing.MAX_FILE_BYTES:
        raise ValidationFailed(f"The file is larger than {importing.MAX_FILE_BYTES // 1_000_000} MB", field="file")
    try:
        return split_lines(decode_upload(upload.read()))
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="file")


def import_values(request) -> list[tuple[int, str]]:
    """`id`, `ids[]` / `ids`, or a multipart file — one value per line, with its line number."""
    lines = _file_lines(request)
    if lines is not None:
        return lines
    data = body(request)
    ids = data.get("ids")
    if ids is not None:
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValidationFailed("ids must be a list of device ids", field="ids")
        return [(n, i) for n, i in enumerate(ids, start=1)]
    single = data.get("id") or request.query_params.get("id")
    if isinstance(single, str) and single.strip():
        return [(1, single.strip())]
    raise ValidationFailed("Send a device `id`, a list `ids`, or a file (one id per line)", field="id")


def import_options(request) -> dict:
    """`import_sims` (default true) and `claim_user`, from the body or the query string."""
    data = body(request)
    claim_user = data.get("claim_user") or request.query_params.get("claim_user") or None
    if claim_user is not None and not isinstance(claim_user, str):
        raise ValidationFailed("claim_user must be an email", field="claim_user")
    return {"import_sims": validation.boolean(data.get("import_sims", request.query_params.get("import_sims")),
                                              field="import_sims", default=True),
            "claim_user": claim_user}


def sim_lines(request) -> list[tuple[int, str]]:
    """`sims` (a list of ICCIDs, or one) or a file with one ICCID per line."""
    lines = _file_lines(request)
    if lines is not None:
        return lines
    raw = body(request).get("sims")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ValidationFailed("sims must be a list of ICCIDs", field="sims")
    return list(enumerate(raw, start=1))


def mb_limit(value: object) -> int | None:
    """`mb_limit`: a whole number of MB, or absent."""
    if value in (None, ""):
        return UNSET
    try:
        return int(str(value))
    except ValueError:
        raise ValidationFailed("mb_limit must be a whole number of MB", field="mb_limit")


def batch_groups(data: dict) -> dict:
    """PUT /v1/products/:p/devices {"action": "groups", "devices": [...], "metadata": {"add", "remove"}}."""
    if data.get("action") != "groups":
        raise ValidationFailed("action must be 'groups'", field="action")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationFailed("metadata must be an object with add and/or remove lists", field="metadata")
    devices = data.get("devices")
    if not isinstance(devices, list) or not devices or not all(isinstance(d, str) for d in devices):
        raise ValidationFailed("devices must be a non-empty list of device ids", field="devices")
    return {"device_ids": devices,
            "add": validation.string_list(metadata.get("add") or [], field="groups", what="group names"),
            "remove": validation.string_list(metadata.get("remove") or [], field="groups", what="group names")}


def group_fields(data: dict) -> dict:
    """POST/PUT /v1/products/:p/groups: name, color, description as given."""
    return {key: data[key] for key in ("name", "color", "description") if key in data}
