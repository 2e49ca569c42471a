from django.urls import path

from integrations.api import integrations as views

P = "v1/products/<str:product>"
HOOK = "<str:integration_id>"

urlpatterns = []
for prefix, name in (("v1", ""), (P, "product-")):
    urlpatterns += [
        path(f"{prefix}/integrations", views.IntegrationListView.as_view(), name=f"{name}integration-list"),
        path(f"{prefix}/integrations/{HOOK}", views.IntegrationDetailView.as_view(), name=f"{name}integration-detail"),
        path(f"{prefix}/integrations/{HOOK}/test", views.IntegrationTestView.as_view(), name=f"{name}integration-test"),
        path(f"{prefix}/integrations/{HOOK}/rotate_secret", views.IntegrationSecretView.as_view(),
             name=f"{name}integration-rotate-secret"),
        path(f"{prefix}/integrations/{HOOK}/dead_letters", views.DeadLetterListView.as_view(),
             name=f"{name}integration-dead-letters"),
        path(f"{prefix}/integrations/{HOOK}/dead_letters/replay", views.DeadLetterReplayView.as_view(),
             name=f"{name}integration-replay"),
        path(f"{prefix}/webhooks", views.LegacyWebhookListView.as_view(), name=f"{name}webhook-list"),
        path(f"{prefix}/webhooks/{HOOK}", views.LegacyWebhookDetailView.as_view(), name=f"{name}webhook-detail"),
    ]
