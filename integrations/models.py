"""Integrations (Particle's webhooks), the deliveries they owe, and their daily counts.

An `Integration` belongs to a product (product hooks) or to a user (sandbox hooks), never both. A `Delivery`
is one (integration, event) owed to a receiver: the durable state of the work (DESIGN.md, "Durable work"); the
broker only carries "deliver these ids". `DeliveryDay` holds the console's 30-day chart.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from products.models import Product


def new_integration_id() -> str:
    """24 lowercase hex characters, like Particle's hook ids."""
    return secrets.token_hex(12)


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Integration(models.Model):
    """One webhook: what to match (`event` prefix, device filter) and how to build the request (`config`)."""

    class Type(models.TextChoices):
        WEBHOOK = "Webhook"

    id = models.CharField(primary_key=True, max_length=24, default=new_integration_id, editable=False)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, null=True, blank=True, related_name="integrations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="integrations")
    integration_type = models.CharField(max_length=40, choices=Type.choices, default=Type.WEBHOOK)
    name = models.CharField(max_length=200, blank=True)
    event = models.CharField(max_length=64)  # a case-sensitive prefix of the event name
    device_id = models.CharField(max_length=24, blank=True)  # "" = every device
    disabled = models.BooleanField(default=False)
    # The webhook's settings in Particle's field names (url, requestType, json, form, body, query, headers, auth,
    # responseTopic, ...), already validated by integrations.validation; PUT replaces it whole.
    config = models.JSONField(default=dict)
    # Kept in the clear on purpose: signing a delivery with HMAC-SHA256 needs the key itself (a hash of it
    # cannot sign). It is shown once, at create and rotate, and never again by any API or page.
    signing_secret = models.CharField(max_length=80, default=new_signing_secret)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="integration_one_owner",
                                   condition=models.Q(product__isnull=True, user__isnull=False)
                                   | models.Q(product__isnull=False, user__isnull=True)),
        ]
        indexes = [
            # the consumer's one query per batch: the live hooks of the products and users of the batch
            models.Index(fields=["product", "disabled"], name="integration_product_live"),
            models.Index(fields=["user", "disabled"], name="integration_user_live"),
        ]

    def __str__(self) -> str:
        return f"{self.integration_type} {self.id} ({self.event})"

    @property
    def url(self) -> str:
        return self.config.get("url", "")


class Delivery(models.Model):
    """One event owed to one integration's receiver, from the publish until delivered or dead-lettered."""

    class State(models.TextChoices):
        PENDING = "pending"  # waiting for a worker (due at next_attempt_at)
        RUNNING = "running"  # claimed by a worker at claimed_at
        DELIVERED = "delivered"
        DEAD = "dead"  # retries ran out or the receiver refused for good: the dead-letter list, replayable

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64)  # the bus's id: the same on SSE, every retry and every replay
    # The event as the bus handed it over (name, data, coreid, published_at, ttl, product_id, user_id), so a
    # retry or a replay builds the same request without the event being kept anywhere else.
    event = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    sleeps = models.PositiveIntegerField(default=0)  # postponed because the target host was sleeping
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    test = models.BooleanField(default=False)  # made by POST .../test
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A publisher that runs twice for the same event owes the receiver one delivery, not two.
            models.UniqueConstraint(fields=["integration", "event_id"], name="delivery_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["integration", "state", "finished_at"], name="delivery_dead_letters"),
        ]


class DeliveryDay(models.Model):
    """Attempts per integration and UTC day, by outcome (the console's 30-day chart, fleet health)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    success = models.PositiveIntegerField(default=0)
    failure = models.PositiveIntegerField(default=0)
    sleep = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["integration", "day"], name="delivery_day_once")]
