from django.urls import path

from devices.api import claims, customers, devices, events, groups, keys, serials, sims

from devices.api import remote  # noqa: E402 - its own line; registers `particle_name`

# The event streams (and the two publish routes that share their paths) come first: `/v1/devices/events`
# would otherwise be read as a device named "events", `/v1/devices/:id/events` as a variable.
_P = "<path:prefix>"
event_patterns = [
    path("v1/events", events.events_stream, name="events-stream"),
    path(f"v1/events/{_P}", events.events_stream, name="events-prefix-stream"),
    path("v1/devices/events", events.mine_stream, name="device-events"),
    path(f"v1/devices/events/{_P}", events.mine_prefix_stream, name="device-events-prefix"),
    path("v1/devices/<str:device>/events", events.scoped_stream, name="device-stream"),
    path(f"v1/devices/<str:device>/events/{_P}", events.scoped_stream, name="device-prefix-stream"),
    path("v1/products/<str:product>/events", events.product_stream, name="product-events"),
    path(f"v1/products/<str:product>/events/{_P}", events.scoped_stream, name="product-prefix-stream"),
    path("v1/products/<str:product>/devices/<str:device>/events", events.scoped_stream,
         name="product-device-stream"),
    path(f"v1/products/<str:product>/devices/<str:device>/events/{_P}", events.scoped_stream,
         name="product-device-prefix-stream"),
    path("v1/orgs/products/<str:product>/events", events.scoped_stream, name="org-products-stream"),
    path(f"v1/orgs/products/<str:product>/events/{_P}", events.scoped_stream, name="org-products-prefix-stream"),
    path("v1/orgs/<str:org>/events", events.scoped_stream, name="org-stream"),
    path(f"v1/orgs/<str:org>/events/{_P}", events.scoped_stream, name="org-prefix-stream"),
    path("v1/orgs/<str:org>/devices/<str:device>/events", events.scoped_stream, name="org-device-stream"),
    path(f"v1/orgs/<str:org>/devices/<str:device>/events/{_P}", events.scoped_stream,
         name="org-device-prefix-stream"),
    path("v1/orgs/<str:org>/products/<str:product>/events", events.scoped_stream, name="org-product-stream"),
    path(f"v1/orgs/<str:org>/products/<str:product>/events/{_P}", events.scoped_stream,
         name="org-product-prefix-stream"),
    path("v1/orgs/<str:org>/products/<str:product>/devices/<str:device>/events", events.scoped_stream,
         name="org-product-device-stream"),
    path(f"v1/orgs/<str:org>/products/<str:product>/devices/<str:device>/events/{_P}", events.scoped_stream,
         name="org-product-device-prefix-stream"),
]

urlpatterns = [
    *event_patterns,
    path("v1/sims", sims.SandboxSimListView.as_view(), name="sim-list"),
    path("v1/sims/<str:iccid>", sims.SimDetailView.as_view(), name="sim-detail"),
    path("v1/sims/<str:iccid>/data_usage", sims.SimUsageView.as_view(), name="sim-usage"),
    path("v1/products/<str:product>/sims", sims.ProductSimListView.as_view(), name="product-sim-list"),
    path("v1/products/<str:product>/sims/data_usage", sims.FleetUsageView.as_view(), name="product-sim-usage"),
    path("v1/products/<str:product>/sims/<str:iccid>", sims.SimDetailView.as_view(), name="product-sim-detail"),
    path("v1/products/<str:product>/sims/<str:iccid>/data_usage", sims.SimUsageView.as_view(),
         name="product-sim-detail-usage"),
    path("v1/products/<str:product>/customers", customers.CustomerListView.as_view(), name="customer-list"),
    path("v1/products/<str:product>/customers/<str:email>", customers.CustomerDetailView.as_view(),
         name="customer-detail"),
    path("v1/device_claims", claims.ClaimCodeView.as_view(), name="claim-code"),
    path("v1/serial_numbers/<str:serial>", serials.SerialNumberView.as_view(), name="serial-number"),
    path("v1/products/<str:product>/device_claims", claims.ClaimCodeView.as_view(), name="product-claim-code"),
    path("v1/devices", devices.DeviceListView.as_view(), name="device-list"),
    path("v1/devices/<str:device_id>", devices.DeviceDetailView.as_view(), name="device-detail"),
    path("v1/provisioning/<str:device_id>", keys.ProvisioningView.as_view(), name="provisioning"),
    path("v1/products/<str:product>/devices", devices.ProductDeviceListView.as_view(), name="product-device-list"),
    path("v1/products/<str:product>/devices/<str:device_id>", devices.ProductDeviceDetailView.as_view(),
         name="product-device-detail"),
    path("v1/products/<str:product>/devices/<str:device_id>/owner", devices.ProductDeviceOwnerView.as_view(),
         name="product-device-owner"),
    path("v1/products/<str:product>/groups", groups.GroupListView.as_view(), name="group-list"),
    path("v1/products/<str:product>/groups/<str:name>", groups.GroupDetailView.as_view(), name="group-detail"),
    # A device's variables (GET) and functions (POST), last: the converter leaves `ping`, `owner` and
    # `events` to their own routes, and any fixed word added above wins over a name.
    path("v1/devices/<str:device_id>/ping", remote.DevicePingView.as_view(), name="device-ping"),
    path("v1/devices/<str:device_id>/<particle_name:name>", remote.DeviceRemoteView.as_view(), name="device-remote"),
    path("v1/products/<str:product>/devices/<str:device_id>/ping", remote.ProductDevicePingView.as_view(),
         name="product-device-ping"),
    path("v1/products/<str:product>/devices/<str:device_id>/<particle_name:name>",
         remote.ProductDeviceRemoteView.as_view(), name="product-device-remote"),
]
