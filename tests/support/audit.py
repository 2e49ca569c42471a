"""The audit log (console.models.AuditEntry, written by console.services.audit_record)."""

from __future__ import annotations

FIELDS = ("actor", "actor_label", "target", "account", "product_id", "data")


def assert_audited(action: str, **expected):
    """Exactly one audit row has `action` and every expected field (any of FIELDS); returns it.

    e.g. assert_audited("device.remove", actor=cast.owner, target=device_id, product_id=cast.product.pk)
    `data` is compared whole.
    """
    from console.models import AuditEntry

    unknown = set(expected) - set(FIELDS)
    assert not unknown, f"assert_audited: unknown fields {sorted(unknown)}"
    rows = list(AuditEntry.objects.filter(action=action).select_related("actor", "account"))
    matching = [row for row in rows if all(getattr(row, name) == want for name, want in expected.items())]
    shown = [{name: getattr(row, name) for name in FIELDS} for row in rows]
    assert len(matching) == 1, f"want one {action!r} audit row with {expected}, the {action!r} rows are {shown}"
    return matching[0]


def audited_actions() -> list[str]:
    from console.models import AuditEntry

    return sorted(AuditEntry.objects.values_list("action", flat=True))
