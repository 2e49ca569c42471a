"""What billing counts. Data operations per day arrive from the event bus (billing/metering.py); the billing
work (service agreements, limits, usage reports) reads them from here."""

from django.db import models


class DataOperationDay(models.Model):
    """The data operations one account, product or device made on one UTC day (particle-api.md §16)."""

    class Scope(models.TextChoices):
        ACCOUNT = "a", "Account"
        PRODUCT = "p", "Product"
        DEVICE = "d", "Device"

    day = models.DateField()
    scope = models.CharField(max_length=1, choices=Scope.choices)
    ref = models.CharField(max_length=24, help_text="The account or product id, or the device id")
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "ref", "day"], name="data_operations_once_a_day")]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} {self.ref} on {self.day}: {self.count}"


class FoldedCounters(models.Model):
    """A batch of Redis counters already added to `DataOperationDay`: written in the same transaction as the
    additions, so a fold that dies after its commit and before it let go of the batch does not add it twice."""

    batch = models.CharField(primary_key=True, max_length=32)
    folded_at = models.DateTimeField(auto_now_add=True)
