"""The console's left navigation: one `Place` per kind of page (sandbox, organization, product).

Entries whose pages do not exist yet carry no URL; the template renders them as disabled "Soon" items
rather than links that lead nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    icon: str
    url: str | None = None

    @property
    def disabled(self) -> bool:
        return self.url is None


@dataclass
class Place:
    """Where the user is: what the sidebar shows and which entry is highlighted."""

    kind: str  # "sandbox" | "organization" | "product"
    title: str
    subtitle: str
    nav: list[NavItem]
    active: str = ""
    back: tuple[str, str] | None = None  # (label, url) shown above the title
    crumbs: list[tuple[str, str | None]] = field(default_factory=list)



def sandbox_place(account=None, active: str = "") -> Place:
    return Place(
        kind="sandbox",
        title=account.name if account is not None else "Your sandbox",
        subtitle="Personal · free plan",
        active=active,
        nav=[
            NavItem("devices", "Devices", "devices", reverse("console:devices:sandbox-list")),
            NavItem("products", "Products", "products", reverse("console:products:list")),
            NavItem("events", "Events", "events", reverse("console:devices:sandbox-events")),
            NavItem("integrations", "Integrations", "integrations", reverse("integrations:list")),
            NavItem("billing", "Billing & usage", "billing"),
            NavItem("authentication", "Authentication", "key", reverse("console:sandbox-auth")),
        ],
        crumbs=[("Sandbox", reverse("console:products:list"))],
    )


def org_place(org, active: str = "") -> Place:
    return Place(
        kind="organization",
        title=org.name,
        subtitle=org.slug,
        active=active,
        nav=[
            NavItem("products", "Products", "products", reverse("console:products:org-list", args=[org.slug])),
            NavItem("team", "Team", "team", reverse("console:org-team", args=[org.slug])),
            NavItem("billing", "Billing & usage", "billing"),
            NavItem("settings", "Settings", "settings", reverse("console:org-settings", args=[org.slug])),
        ],
        crumbs=[(org.name, reverse("console:products:org-list", args=[org.slug]))],
    )


def account_place(account, active: str = "") -> Place:
    return sandbox_place(account, active) if account is None or account.is_sandbox else org_place(account, active)


def account_home(account) -> str:
    """The products page of an account: where the switcher and the home page lead."""
    if account is None or account.is_sandbox:
        return reverse("console:products:list")
    return reverse("console:products:org-list", args=[account.slug])
