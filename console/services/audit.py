"""The audit log: one row per change that matters, written inside the change's own transaction."""

from __future__ import annotations

from console.models import Account, AuditEntry
from console.scoping import Principal


def audit_record(
    *, principal: Principal | None, action: str, target: str = "", account: Account | None = None,
    product_id: int | None = None, data: dict | None = None,
) -> None:
    """Write one audit row (inside the caller's transaction, so it exists only if the change does)."""
    AuditEntry.objects.create(
        actor=principal.user if principal else None,
        actor_label=principal.label if principal else "system",
        action=action,
        target=target[:200],
        account=account,
        product_id=product_id,
        data=data or {},
    )
