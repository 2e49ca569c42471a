from django.urls import path

from devices.api import more_views as mv
from devices.api import views

urlpatterns = [
    path("v1/sims", mv.SandboxSimListView.as_view(), name="sim-list"),
    path("v1/sims/<str:iccid>", mv.SimDetailView.as_view(), name="sim-detail"),
    path("v1/sims/<str:iccid>/data_usage", mv.SimUsageView.as_view(), name="sim-usage"),
    path("v1/products/<str:product>/sims", mv.ProductSimListView.as_view(), name="product-sim-list"),
    path("v1/products/<str:product>/sims/data_usage", mv.FleetUsageView.as_view(), name="product-sim-usage"),
    path("v1/products/<str:product>/sims/<str:iccid>", mv.SimDetailView.as_view(), name="product-sim-detail"),
    path("v1/products/<str:product>/sims/<str:iccid>/data_usage", mv.SimUsageView.as_view(),
         name="product-sim-detail-usage"),
    path("v1/products/<str:product>/customers", mv.CustomerListView.as_view(), name="customer-list"),
    path("v1/products/<str:product>/customers/<str:email>", mv.CustomerDetailView.as_view(), name="customer-detail"),
    path("v1/device_claims", mv.ClaimCodeView.as_view(), name="claim-code"),
    path("v1/serial_numbers/<str:serial>", mv.SerialNumberView.as_view(), name="serial-number"),
    path("v1/products/<str:product>/device_claims", mv.ClaimCodeView.as_view(), name="product-claim-code"),
    path("v1/devices", views.DeviceListView.as_view(), name="device-list"),
    path("v1/devices/<str:device_id>", views.DeviceDetailView.as_view(), name="device-detail"),
    path("v1/products/<str:product>/devices", views.ProductDeviceListView.as_view(), name="product-device-list"),
    path("v1/products/<str:product>/devices/<str:device_id>", views.ProductDeviceDetailView.as_view(),
         name="product-device-detail"),
    path("v1/products/<str:product>/devices/<str:device_id>/owner", views.ProductDeviceOwnerView.as_view(),
         name="product-device-owner"),
    path("v1/products/<str:product>/groups", views.GroupListView.as_view(), name="group-list"),
    path("v1/products/<str:product>/groups/<str:name>", views.GroupDetailView.as_view(), name="group-detail"),
]
