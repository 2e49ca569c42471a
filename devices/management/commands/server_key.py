"""Write the server key file devices need to reach this cloud (docs/device-protocol.md "Keys").

    manage.py server_key --host cloud.example.com --out cloud.der
    particle keys server cloud.der        # then put it on a device over USB (or `particle keys server` itself)

The key pair is made on first use and kept where DEVICE_SERVER_KEY_FILE says (default: the data directory).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand, CommandError

from console.errors import ValidationFailed
from devices.keys import server_key_file, server_key_path, server_private_key


class Command(BaseCommand):
    help = "Write the server public key file (DER, with the address devices dial) or the public key as PEM."

    def add_arguments(self, parser):
        parser.add_argument("--host", help="The IPv4 address or domain name devices dial (the file's address)")
        parser.add_argument("--out", required=True, help="File to write ('-' for stdout with --format pem)")
        parser.add_argument("--format", choices=["der", "pem"], default="der",
                            help="der: the 518-byte file a device holds (needs --host); pem: the public key alone")

    def handle(self, *args, host=None, out, format="der", **options):
        if format == "pem":
            data = server_private_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
            if out == "-":
                self.stdout.write(data.decode(), ending="")
                return
        else:
            if not host:
                raise CommandError("--host is required: the address devices dial is part of the file")
            try:
                data = server_key_file(host)
            except ValidationFailed as exc:
                raise CommandError(exc.description)
        Path(out).write_bytes(data)
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(data)} bytes to {out} "
                                             f"(the key pair is in {server_key_path()})"))
