"""Register manufactured devices, with their key pairs, and write the "wholesale order" file of their ids.

    manage.py manufacture --platform boron --count 500 --out ids.txt [--secrets secrets.jsonl]
                          [--host 127.0.0.1] [--port 5683] [--shared-key]

With `--secrets`, every device gets an RSA-1024 key pair: the public key is stored (DeviceKey), the private key
goes to the secrets file, JSON Lines (docs/device-protocol.md "Keys"), which `manage.py simulate_fleet` reads:

    {"kind":"server","server_key":"<base64 server key file>","host":"127.0.0.1","port":5683}
    {"kind":"shared_key","private_key":"<base64 PKCS#1 DER>"}                  (only with --shared-key)
    {"kind":"device","id":"<24 hex>","platform_id":6,"serial_number":"...","iccid":null,
     "device_secret":"...","private_key":"<base64 PKCS#1 DER>"}              (no private_key with --shared-key)

Without `--secrets` there is nowhere to put private keys, so the devices are registered without keys (each can
get one with `POST /v1/provisioning/:id`, `particle keys send`).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from console.datadir import private_file
from console.errors import ValidationFailed
from devices.keys import device_key_pairs, server_key_file
from devices.services.registry import devices_manufacture
from products.models import Platform


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Command(BaseCommand):
    help = "Register N manufactured devices of a platform (with key pairs) and write their ids (one per line)."

    def add_arguments(self, parser):
        parser.add_argument("--platform", required=True, help="Platform id (13) or slug (boron)")
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--out", required=True, help="File for the device ids, one per line")
        parser.add_argument("--secrets", help="JSON Lines file of the server key and each device's id, serial, "
                                              "secret and private key (what the fleet simulator connects with); "
                                              "devices get key pairs only when this is given")
        parser.add_argument("--host", default="127.0.0.1", help="Address devices dial, written into the server "
                                                                 "key in --secrets (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=5683, help="Gateway port for --secrets (default 5683)")
        parser.add_argument("--shared-key", action="store_true",
                            help="BENCHMARK ONLY: one key pair for the whole batch, so a 20,000-device fleet is "
                                 "made in seconds; any device's key then opens every device of the batch")
        parser.add_argument("--serial-prefix", help="Serial number prefix (default from the platform)")
        parser.add_argument("--workers", type=int, help="Processes generating keys (default: every core)")

    def handle(self, *args, platform, count, out, secrets=None, host="127.0.0.1", port=5683, shared_key=False,
               serial_prefix=None, workers=None, **options):
        found = (Platform.objects.filter(pk=int(platform)).first() if platform.isdigit()
                 else Platform.objects.filter(slug=platform.lower()).first())
        if found is None:
            raise CommandError(f"Unknown platform {platform!r}; see the platform list in the admin")
        if shared_key and not secrets:
            raise CommandError("--shared-key needs --secrets: the shared private key is written there")
        if not 1 <= port <= 65535:
            raise CommandError("--port must be between 1 and 65535")
        pairs: list[tuple[bytes, bytes]] = []
        server_line = None
        if secrets:
            try:
                server_line = {"kind": "server", "server_key": _b64(server_key_file(host)), "host": host,
                               "port": port}
            except ValidationFailed as exc:
                raise CommandError(exc.description)
            if not 1 <= count <= 1_000_000:
                raise CommandError("count must be between 1 and 1,000,000")
            started = time.perf_counter()
            pairs = device_key_pairs(1) * count if shared_key else device_key_pairs(count, workers=workers)
            took = time.perf_counter() - started
            made_keys = 1 if shared_key else count
            self.stdout.write(f"Generated {made_keys} RSA-1024 key pair(s) in {took:.2f}s "
                              f"({made_keys / took:,.0f}/s)")
        try:
            made = devices_manufacture(platform=found, count=count, serial_prefix=serial_prefix,
                                       public_keys=[public for _, public in pairs] if pairs else None)
        except ValidationFailed as exc:
            raise CommandError(exc.description)
        with open(out, "w") as fh:
            fh.writelines(f"{m.device_id}\n" for m in made)
        if secrets:
            self._write_secrets(secrets, server_line, made, pairs, found, shared_key)
            self.stdout.write(self.style.SUCCESS(
                f"Registered {len(made)} {found.name} devices; ids in {out}, keys and secrets in {secrets}"))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Registered {len(made)} {found.name} devices without keys (no --secrets); ids in {out}"))

    def _write_secrets(self, path, server_line, made, pairs, platform, shared_key) -> None:
        # Private keys: readable by the account that ran the command and nobody else.
        with open(private_file(Path(path)), "w") as fh:
            dump = json.dumps
            fh.write(dump(server_line, separators=(",", ":")) + "\n")
            if shared_key:
                fh.write(dump({"kind": "shared_key", "private_key": _b64(pairs[0][0])}, separators=(",", ":"))
                         + "\n")
            for m, (private, _) in zip(made, pairs):
                line = {"kind": "device", "id": m.device_id, "platform_id": platform.pk,
                        "serial_number": m.serial_number, "iccid": m.iccid, "device_secret": m.secret}
                if not shared_key:
                    line["private_key"] = _b64(private)
                fh.write(dump(line, separators=(",", ":")) + "\n")
