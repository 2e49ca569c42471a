"""Console pages of integrations, for the sandbox (/integrations/) and for a product
(/products/<slug>/integrations/): the list, create and edit from a form or JSON, and a page per hook with the
test button, the recent requests and responses, the 30-day chart, the signing secret's rotation and the dead
letters with replay. Every POST resolves its hook again with the action it takes; writes go through
integrations.services, as the API's do."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.errors import ServiceError, ValidationFailed
from console.scoping import rights_for
from console.services.users import sandbox_of
from console.web.access import console_view, enter_account, form_error
from console.web.nav import Place, sandbox_place
from integrations import delivery, logs, selectors, services, validation
from integrations.models import Integration
from integrations.web.forms import FIELD_OF, IntegrationForm, initial_for
from products.models import Product
from products.selectors import product_get
from products.web.views import product_place

ACTIONS = ("integrations:create", "integrations:update", "integrations:remove", "integrations:test")
SECRET_KEY = "integration_secret"  # the session key holding a just-made secret until its page shows it once
TEST_KEY = "integration_test"


@dataclass
class Where:
    """A sandbox's or a product's integrations, as one page sees them."""

    product: Product | None
    place: Place
    can: dict

    def url(self, name: str, *args) -> str:
        if self.product is None:
            return reverse(f"integrations:{name}", args=list(args))
        return reverse(f"integrations:product-{name}", args=[self.product.slug, *args])

    @property
    def owner(self) -> dict:
        return {"product": self.product} if self.product is not None else {}


def _where(request, product: str | None, action: str, *crumbs) -> Where:
    if product is None:
        enter_account(request, sandbox_of(request.user))
        place = sandbox_place(request.current_account, "integrations")
        can = {a.replace(":", "_"): True for a in ACTIONS}  # one's own sandbox: everything
        found = None
    else:
        found = product_get(principal=request.principal, ident=product, action=action)
        enter_account(request, found.account)
        place = product_place(request, found, "integrations")
        can = rights_for(request.principal, found).as_dict(*ACTIONS)
    where = Where(found, place, can)
    place.crumbs.append(("Integrations", where.url("list") if crumbs else None))
    place.crumbs.extend(crumbs)
    return where


def _hook(request, where: Where, integration_id: str) -> Integration:
    try:
        return selectors.integration_get(principal=request.principal, integration_id=integration_id,
                                         product=where.product)
    except ServiceError as exc:
        raise Http404(exc.description) from exc


@console_view
def integration_list(request, product: str | None = None):
    where = _where(request, product, "integrations:list")
    hooks = list(selectors.integrations_of(product=where.product, user=request.user if where.product is None else None))
    return render(request, "integrations/list.html", {
        "place": where.place, "where": where, "can": where.can, "product": where.product,
        "rows": [{"hook": h, "url": where.url("detail", h.id)} for h in hooks], "new_url": where.url("new"),
    })


def _save(request, where: Where, form: IntegrationForm, hook: Integration | None):
    """Validate and write; returns the saved hook, or None with the errors on the form."""
    if not form.is_valid():
        return None
    body = form.webhook_body()
    if body is None:
        return None
    try:
        validation.integration_type(body)
        fields = validation.webhook_fields(body)
        if hook is None:
            return services.integration_create(principal=request.principal, fields=fields, **(
                where.owner if where.product is not None else {"user": request.user}))
        return services.integration_replace(principal=request.principal, integration=hook, fields=fields)
    except ValidationFailed as exc:
        form_error(form, exc, FIELD_OF if form.cleaned_data["mode"] == "form" else {})
        if form.cleaned_data["mode"] == "json" and not form.errors.get("raw_json"):
            form.add_error("raw_json", f"{exc.field}: {exc.description}" if exc.field else exc.description)
        return None


@console_view
def integration_new(request, product: str | None = None):
    where = _where(request, product, "integrations:create", ("New integration", None))
    form = IntegrationForm(request.POST or None, initial={"reject_unauthorized": True})
    if request.method == "POST":
        hook = _save(request, where, form, None)
        if hook is not None:
            request.session[SECRET_KEY] = {"id": hook.id, "secret": hook.signing_secret}
            messages.success(request, f"Integration created: events starting with “{hook.event}” go to {hook.url}.")
            return redirect(where.url("detail", hook.id))
    return render(request, "integrations/edit.html", {"place": where.place, "where": where, "form": form,
                                                      "hook": None, "product": where.product,
                                                      "cancel_url": where.url("list")},
                  status=400 if request.method == "POST" else 200)


@console_view
def integration_edit(request, integration_id: str, product: str | None = None):
    action = "integrations:update" if request.method == "POST" else "integrations:get"
    where = _where(request, product, action, ("Edit", None))
    hook = _hook(request, where, integration_id)
    form = IntegrationForm(request.POST or None, initial=initial_for(hook))
    if request.method == "POST":
        saved = _save(request, where, form, hook)
        if saved is not None:
            messages.success(request, "Integration saved. The whole configuration was replaced.")
            return redirect(where.url("detail", hook.id))
    return render(request, "integrations/edit.html", {"place": where.place, "where": where, "form": form,
                                                      "hook": hook, "product": where.product,
                                                      "cancel_url": where.url("detail", hook.id)},
                  status=400 if request.method == "POST" else 200)


@console_view
def integration_detail(request, integration_id: str, product: str | None = None):
    where = _where(request, product, "integrations:get")
    hook = _hook(request, where, integration_id)
    where.place.crumbs[-1] = ("Integrations", where.url("list"))
    where.place.crumbs.append((hook.name or hook.event, None))
    secret = request.session.pop(SECRET_KEY, None)
    revealed = None
    if secret and secret.get("id") == hook.id:
        revealed = {"title": "Signing secret", "label": "Secret", "value": secret["secret"],
                    "note": "Shown this once. Receivers verify X-Cyan-Signature with it: HMAC-SHA256 of "
                            "“<X-Cyan-Timestamp>.” followed by the body.", "pairs": []}
    test = request.session.pop(TEST_KEY, None)
    recent = logs.logs_read(hook.id)
    days = selectors.integration_days(hook)
    top = max([d["success"] + d["failure"] + d["sleep"] for d in days] or [1]) or 1
    for d in days:
        d["total"] = d["success"] + d["failure"] + d["sleep"]
        d["pct"] = {k: round(100 * d[k] / top, 1) for k in ("success", "failure", "sleep")}
    return render(request, "integrations/detail.html", {
        "place": where.place, "where": where, "can": where.can, "hook": hook, "product": where.product,
        "revealed": revealed, "test": test if test and test.get("id") == hook.id else None,
        "successes": recent["successes"], "errors": recent["errors"], "days": days,
        "dead": selectors.dead_letters(hook), "dead_total": selectors.dead_letter_count(hook),
        "log_sections": [("Recent successes", recent["successes"]), ("Recent errors", recent["errors"])],
        **{f"{name}_url": where.url(name, hook.id) for name in ("test", "edit", "rotate", "delete", "replay")},
    })


@console_view
@require_POST
def integration_test(request, integration_id: str, product: str | None = None):
    where = _where(request, product, "integrations:test")
    hook = _hook(request, where, integration_id)
    request.session[TEST_KEY] = {"id": hook.id, **delivery.integration_test(hook)}
    return redirect(where.url("detail", hook.id))


@console_view
@require_POST
def integration_rotate(request, integration_id: str, product: str | None = None):
    where = _where(request, product, "integrations:update")
    hook = _hook(request, where, integration_id)
    request.session[SECRET_KEY] = {"id": hook.id,
                                   "secret": services.integration_rotate_secret(principal=request.principal,
                                                                                integration=hook)}
    messages.success(request, "A new signing secret is in use. The old one no longer signs anything.")
    return redirect(where.url("detail", hook.id))


@console_view
@require_POST
def integration_delete(request, integration_id: str, product: str | None = None):
    where = _where(request, product, "integrations:remove")
    hook = _hook(request, where, integration_id)
    services.integration_delete(principal=request.principal, integration=hook)
    messages.success(request, f"Integration for “{hook.event}” deleted.")
    return redirect(where.url("list"))


@console_view
@require_POST
def integration_replay(request, integration_id: str, product: str | None = None):
    where = _where(request, product, "integrations:update")
    hook = _hook(request, where, integration_id)
    one = request.POST.get("delivery", "")
    ids = [int(one)] if one.isdigit() else None
    count = services.dead_letters_replay(principal=request.principal, integration=hook, ids=ids)
    messages.success(request, f"{count} dead letter{'s' if count != 1 else ''} sent again.")
    return redirect(where.url("detail", hook.id))
