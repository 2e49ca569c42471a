"""API view for serial-number lookups: /v1/serial_numbers/:sn."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from devices.api.serializers import serial_number_body
from devices.selectors.devices import device_by_serial, sim_of


class SerialNumberView(APIView):
    """GET /v1/serial_numbers/:sn — the device behind a serial number the caller can reach (50 per hour)."""

    def get(self, request, serial: str):
        device = device_by_serial(principal=request.auth, serial=serial)
        return Response(serial_number_body(device, sim_of(device)))
