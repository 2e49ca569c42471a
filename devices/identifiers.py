"""The shapes of identifiers — device ids, serial numbers, ICCIDs, IMEIs, device and group names, colours —
and telling them apart on an import line. Every door checks these with `fullmatch` against the patterns
here, and nowhere else."""

from __future__ import annotations

import re

# ASCII only: `\d` would otherwise take Arabic-Indic or full-width digits for an IMEI or ICCID.
DEVICE_ID = re.compile(r"[0-9a-f]{24}", re.ASCII)
ICCID = re.compile(r"89\d{16,20}[0-9F]?", re.ASCII)  # ITU-T E.118: "89" (telecom) + up to 20 digits
IMEI = re.compile(r"\d{15}", re.ASCII)
SERIAL = re.compile(r"[A-Z0-9]{6,40}", re.ASCII)
DEVICE_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}", re.ASCII)  # Particle's rule for device names
GROUP_NAME = re.compile(r"[a-z0-9_-]{1,100}", re.ASCII)
COLOR = re.compile(r"#[0-9a-fA-F]{6}", re.ASCII)


def is_device_id(value: str) -> bool:
    """24 hex characters, either case (callers store and compare the lower-case form)."""
    return value.isascii() and bool(DEVICE_ID.fullmatch(value.lower()))


def classify(value: str) -> tuple[str, str]:
    """(kind, normalized) where kind is "id", "iccid", "imei", "serial" or "invalid"."""
    text = value.strip()
    if not text.isascii():  # str.upper() turns some letters ASCII (ſ -> S, ß -> SS, ﬁ -> FI)
        return "invalid", text
    low = text.lower()
    if DEVICE_ID.fullmatch(low):
        return "id", low
    up = text.upper()
    if ICCID.fullmatch(up):
        return "iccid", up
    if IMEI.fullmatch(text):
        return "imei", text
    if SERIAL.fullmatch(up) and not up.isdigit():
        return "serial", up
    return "invalid", text


_SEPARATORS = re.compile(r"[,;\t#]")


def split_lines(payload: str) -> list[tuple[int, str]]:
    """(line number, value) for each value of an uploaded list: one per line; commas, semicolons and tabs
    also separate values (spreadsheets export them), blank lines and `#` comments are skipped."""
    if not _SEPARATORS.search(payload):  # the usual file: one bare value per line
        return [(number, value) for number, raw in enumerate(payload.splitlines(), start=1) if (value := raw.strip())]
    out = []
    for number, raw in enumerate(payload.splitlines(), start=1):
        line = raw.split("#", 1)[0]
        # Not on spaces: "hello world" is one bad line, not two.
        out.extend((number, value) for part in re.split(r"[,;\t]", line) if (value := part.strip()))
    return out


def decode_upload(data: bytes) -> str:
    """Text of an uploaded file, or ValueError for binary content (NUL bytes, invalid UTF-8)."""
    if b"\x00" in data:
        raise ValueError("The file is binary, not a text list of device ids")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("The file is not UTF-8 text")
