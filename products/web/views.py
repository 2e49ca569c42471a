"""Console pages of products: each account's product list (with "New product"), and one product's
overview, settings, team and authentication (OAuth clients).

Every page finds its product through `products.selectors.product_get(principal, ident, action)`: another
tenant's product is NotFound (404 page) and a role that may not act is Forbidden (403 page). Pages hide
the controls a role cannot use, and the POST handlers check the role again.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.errors import ServiceError
from console.models import Account, OAuthClient
from console.roles import OWNER_LABEL
from console.scoping import rights_for
from console.services import clients as client_services
from console.services import users as user_services
from console.services.teams import team_entries
from console.web import team as team_views
from console.web.access import console_view, enter_account, form_error, org_allows, org_get, visible_accounts
from console.web.forms import ClientCreateForm
from console.web.nav import NavItem, Place, account_home, org_place, sandbox_place
from products import selectors, services
from products.models import Product
from products.web.forms import ProductCreateForm, ProductSettingsForm

# --- the sidebar of a product ---------------------------------------------------------------------------


def product_place(request, product: Product, active: str, page: str = "") -> Place:
    def url(name: str) -> str:
        return reverse(f"console:products:{name}", args=[product.slug])

    account = product.account
    own_or_seat = account.owner_id == request.user.pk or (
        not account.is_sandbox and any(a.pk == account.pk for a in visible_accounts(request)))
    if account.is_sandbox or not own_or_seat:
        # A sandbox product, or an org product shared through the product team only: it sits in the sandbox list.
        back = ("Sandbox products", reverse("console:products:list"))
        crumbs = [("Sandbox", reverse("console:products:list"))]
    else:
        back = (f"{account.name} products", account_home(account))
        crumbs = [(account.name, account_home(account))]
    crumbs.append((product.name, url("detail")))
    if page:
        crumbs.append((page, None))
    return Place(
        kind="product",
        title=product.name,
        subtitle=f"{product.platform.name} · ID {product.pk}",
        active=active,
        back=back,
        crumbs=crumbs,
        nav=[
            NavItem("overview", "Overview", "overview", url("detail")),
            # Device pages live one app up (devices/web); their URL names are strings, nothing is imported.
            NavItem("devices", "Devices", "devices", reverse("console:devices:list", args=[product.slug])),
            NavItem("groups", "Groups", "groups", reverse("console:devices:groups", args=[product.slug])),
            NavItem("sims", "SIM cards", "sim", reverse("console:devices:sims", args=[product.slug])),
            NavItem("events", "Events", "events", reverse("console:devices:events", args=[product.slug])),
            NavItem("integrations", "Integrations", "integrations",
                    reverse("integrations:product-list", args=[product.slug])),
            NavItem("firmware", "Firmware", "firmware"),
            NavItem("health", "Fleet health", "health"),
            NavItem("customers", "Customers", "customers",
                    reverse("console:devices:customers", args=[product.slug])),
            NavItem("team", "Team", "team", url("team")),
            NavItem("authentication", "Authentication", "key", url("auth")),
            NavItem("settings", "Settings", "settings", url("settings")),
        ],
    )


def _product(request, ident: str, action: str) -> Product:
    product = selectors.product_get(principal=request.principal, ident=ident, action=action)
    enter_account(request, product.account)
    return product


def _may(request, product: Product, action: str) -> bool:
    return rights_for(request.principal, product).may(action)


# --- product lists --------------------------------------------------------------------------------------


def _create_from(request, account: Account):
    """Handle the "New product" form; a redirect on success, else the bound form with the errors."""
    form = ProductCreateForm(request.POST)
    if form.is_valid():
        try:
            product = services.product_create(principal=request.principal, account=account,
                                              name=form.cleaned_data["name"],
                                              platform_id=form.cleaned_data["platform_id"],
                                              description=form.cleaned_data["description"])
        except ServiceError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Product {product.name} created. Next: invite your team or add devices.")
            return redirect("console:products:detail", product=product.slug)
    return form


def _matches(product: Product, q: str) -> bool:
    q = q.lower()
    return q in product.name.lower() or q in product.slug or q == str(product.pk) or q in product.platform.name.lower()


def _list_page(request, *, place: Place, sections: list[dict], can_create: bool, account: Account,
               form: ProductCreateForm | None):
    # An account holds tens of products, not thousands: search the loaded list rather than query again.
    total = sum(len(s["products"]) for s in sections)
    q = request.GET.get("q", "").strip()[:100]
    if q:
        sections = [{**s, "products": [p for p in s["products"] if _matches(p, q)]} for s in sections]
    return render(request, "products/list.html", {
        "place": place, "sections": sections, "can_create": can_create, "account": account,
        "form": form or ProductCreateForm(),
        "open_dialog": "product-dialog" if form is not None else "",
        "total": total, "q": q, "shown": sum(len(s["products"]) for s in sections),
    }, status=400 if form is not None else 200)


@console_view
def sandbox_products(request):
    sandbox = user_services.sandbox_of(request.user)
    enter_account(request, sandbox)
    form = None
    if request.method == "POST":
        result = _create_from(request, sandbox)
        if not isinstance(result, ProductCreateForm):
            return result
        form = result
    visible = selectors.product_list(principal=request.principal)
    # Org products appear under their org; those reached only through a product seat are listed here.
    my_orgs = Account.objects.restrict(request.principal).filter(kind=Account.Kind.ORGANIZATION).values("pk")
    sections = [
        {"key": "own", "title": "Your products", "products": list(visible.filter(account=sandbox)), "own": True},
        {"key": "shared", "title": "Shared with you",
         "products": list(visible.exclude(account=sandbox).exclude(account__in=my_orgs)), "own": False},
    ]
    place = sandbox_place(sandbox, "products")
    place.crumbs.append(("Products", None))
    return _list_page(request, place=place, sections=sections, can_create=True, account=sandbox, form=form)


@console_view
def org_products(request, org: str):
    account = org_get(request, org)
    can_create = org_allows(request, account, "products:create")
    form = None
    if request.method == "POST":
        org_get(request, org, "products:create")  # Forbidden (403) below Developer
        result = _create_from(request, account)
        if not isinstance(result, ProductCreateForm):
            return result
        form = result
    products = list(selectors.product_list(principal=request.principal, account=account))
    place = org_place(account, "products")
    place.crumbs.append(("Products", None))
    return _list_page(request, place=place, can_create=can_create, account=account, form=form,
                      sections=[{"key": "org", "title": "Organization products", "products": products, "own": True}])


# --- one product ------------------------------------------------------------------------------------------


@console_view
def overview(request, product: str):
    found = _product(request, product, "products:get")
    rights = rights_for(request.principal, found)
    role, is_owner = rights.role, rights.is_owner
    entries = team_entries(services.product_team(found))
    return render(request, "products/overview.html", {
        "place": product_place(request, found, "overview"),
        "product": found,
        "role_label": OWNER_LABEL if is_owner else (role.label if role else "Team member"),
        "people_count": sum(1 for e in entries if not e.get("is_programmatic")),
        "api_user_count": sum(1 for e in entries if e.get("is_programmatic")),
        "client_count": OAuthClient.objects.filter(product_id=found.pk).count(),
        "can_edit": rights.may("products:update"),
    })


@console_view
def settings(request, product: str):
    """Name, description, quarantine and location. Administrators edit; everyone else reads."""
    found = _product(request, product, "products:get")
    can_edit = _may(request, found, "products:update")
    if request.method == "POST":
        found = _product(request, product, "products:update")  # Forbidden (403) for other roles
        form = ProductSettingsForm(request.POST)
        if form.is_valid():
            try:
                services.product_update(principal=request.principal, product=found, **form.service_data())
            except ServiceError as exc:
                form_error(form, exc, {"settings.quarantine": "quarantine", "settings.location.opt_in": "location_opt_in"})
            else:
                messages.success(request, "Product settings saved.")
                return redirect("console:products:settings", product=found.slug)
        found.refresh_from_db()  # the service may have set attributes before refusing
    else:
        form = ProductSettingsForm(initial=ProductSettingsForm.initial_for(found))
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "products/settings.html", {
        "place": product_place(request, found, "settings", "Settings"), "product": found, "form": form,
        "can_edit": can_edit,
    }, status=400 if form.errors else 200)


def _team_resolver(ident: str):
    def resolve(request, action: str) -> team_views.TeamPlace:
        found = _product(request, ident, action)
        account = found.account
        note, note_url = "", ""
        if not account.is_sandbox:
            note = f"Members of the organization {account.name} also have access, through their organization role."
            if any(a.pk == account.pk for a in visible_accounts(request)):
                note_url = reverse("console:org-team", args=[account.slug])
        return team_views.TeamPlace(
            team=services.product_team(found), place=product_place(request, found, "team", "Team"),
            page_url=reverse("console:products:team", args=[found.slug]),
            role_url=lambda u: reverse("console:products:team-role", args=[found.slug, u]),
            remove_url=lambda u: reverse("console:products:team-remove", args=[found.slug, u]),
            can_manage=_may(request, found, "teams.users:invite"),
            note=note, note_url=note_url,
        )

    return resolve


@console_view
def team(request, product: str):
    return team_views.team_page(request, _team_resolver(product))


@console_view
def team_role(request, product: str, username: str):
    return team_views.team_set_role_view(request, _team_resolver(product), username)


@console_view
def team_remove(request, product: str, username: str):
    return team_views.team_remove_view(request, _team_resolver(product), username)


@console_view
def authentication(request, product: str):
    """The product's OAuth clients: list (View-only and up), create and delete (Developer and up)."""
    found = _product(request, product, "clients:list")
    form = ClientCreateForm()
    revealed, open_dialog, status = None, "", 200
    if request.method == "POST":
        found = _product(request, product, "clients:create")
        form = ClientCreateForm(request.POST)
        if form.is_valid():
            try:
                client, secret = client_services.client_create(
                    principal=request.principal, product_id=found.pk, product_slug=found.slug,
                    name=form.cleaned_data["name"], type=form.cleaned_data["type"],
                    redirect_uri=form.cleaned_data["redirect_uri"] or None, scope=form.cleaned_data["scope"])
            except ServiceError as exc:
                form_error(form, exc)
            else:
                revealed = {
                    "title": f"OAuth client “{client.name}” created", "label": "Client secret", "value": secret,
                    "pairs": [("Client ID", client.client_id)],
                    "note": "Copy the secret now: it is shown only once. Lost it? Delete the client and create another.",
                }
                form = ClientCreateForm()
        if revealed is None:
            open_dialog, status = "client-dialog", 400
    clients = OAuthClient.objects.filter(product_id=found.pk)
    return render(request, "products/authentication.html", {
        "place": product_place(request, found, "authentication", "Authentication"), "product": found,
        "client_rows": [(c, reverse("console:products:client-delete", args=[found.slug, c.client_id]))
                        for c in clients],
        "client_form": form, "can_manage_clients": _may(request, found, "clients:create"), "show_scope": True,
        "revealed": revealed, "open_dialog": open_dialog,
    }, status=status)


@console_view
@require_POST
def client_delete(request, product: str, client_id: str):
    found = _product(request, product, "clients:remove")
    client = client_services.client_get_for_owner(client_id=client_id, product_id=found.pk)
    client_services.client_delete(principal=request.principal, client=client)
    messages.success(request, f"OAuth client {client_id} was deleted, with the tokens issued to it.")
    return redirect("console:products:auth", product=found.slug)
