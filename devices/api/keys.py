"""POST /v1/provisioning/:id — upload a device's public key (`particle keys send`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body
from devices.selectors import devices as device_selectors
from devices.services.keys import device_key_upload
from products.selectors import product_get


class ProvisioningView(APIView):
    """The CLI sends a form: deviceID, publicKey (PEM), filename, order, algorithm (rsa), and product_id when
    given `--product_id`; `filename` and `order` are the CLI's bookkeeping and ignored here."""

    @extend_schema(summary="Upload a device's public key (particle keys send)", tags=["devices"])
    def post(self, request, device_id: str):
        data = body(request)
        product = data.get("product_id")
        if product not in (None, ""):
            found = product_get(principal=request.auth, ident=product, action="devices:update")
            device = device_selectors.product_device_get(product=found, device_id=device_id)
        else:
            device = device_selectors.device_get(principal=request.auth, device_id=device_id,
                                                 action="devices:update")
        device_key_upload(principal=request.auth, device=device, public_key=data.get("publicKey") or "",
                          algorithm=data.get("algorithm") or "rsa")
        return Response({"ok": True})
