"""Run simulated devices against the gateway, as Particle devices running Device OS would connect.

    manage.py simulate_fleet --secrets secrets.jsonl [--count N] [--product ID] [--publish-every S]
                             [--churn PCT] [--for SECONDS] [--host H] [--port P] [--processes N]

A thin wrapper: the simulator (devices/simulator/) never touches Cyan's models or services, it only talks
to the gateway over TCP.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from devices.simulator import cli


class Command(BaseCommand):
    help = "Connect the devices of a secrets file to the gateway over Particle's device protocol."

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            self.stdout.ending = ""       # the progress line writes its own line ends (and \r on a terminal)
            cli.run(options, out=self.stdout)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc))
