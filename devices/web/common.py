"""What every console page of a product's fleet shares: finding the product (404 for another tenant, 403 for a
role that may not act), the rights that decide which controls show, the sidebar, links back, CSV streaming.

Pages hide the controls a role cannot use; every POST resolves its product again with the action it takes
before it reads its input. Writes go through the services in `devices/services/`; their refusals become
form errors or flash messages."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.http import url_has_allowed_host_and_scheme

from console.scoping import Rights, rights_for
from console.web.access import enter_account
from console.web.nav import Place
from products.models import Product
from products.selectors import product_get
from products.web.views import product_place


def product_for(request, ident: str, action: str) -> Product:
    product = product_get(principal=request.principal, ident=ident, action=action)
    enter_account(request, product.account)
    return product


def rights(request, product: Product) -> Rights:
    return rights_for(request.principal, product)


def place(request, product: Product, active: str, *crumbs: tuple[str, str | None]) -> Place:
    found = product_place(request, product, active)
    found.crumbs.extend(crumbs)
    return found


def url(name: str, product: Product, *args) -> str:
    return reverse(f"console:devices:{name}", args=[product.slug, *args])


def detail_urls(product_slug: str):
    """A page's device detail links with one reverse(): the device id is the path's last part."""
    head, tail = reverse("console:devices:detail", args=[product_slug, "-"]).rsplit("-", 1)
    return lambda device_id: f"{head}{device_id}{tail}"


def heard(device) -> tuple[str, str, str] | None:
    """A device's last contact for a list row, formatted once here rather than by three template filters:
    (ISO 8601, "Y-m-d H:i:s e" and "3 minutes ago"), in the current time zone as the `date` filter shows it;
    None when it was never heard."""
    if not device.last_heard:
        return None
    local = timezone.localtime(device.last_heard)
    return dateformat.format(local, "c"), dateformat.format(local, "Y-m-d H:i:s e"), naturaltime(device.last_heard)


def back(request, default: str) -> str:
    """The `next` a form carries (a page of this site), else `default`."""
    wanted = request.POST.get("next") or ""
    if wanted.startswith("/") and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}):
        return wanted
    return default


def first_error(form) -> str:
    for errors in form.errors.values():
        return errors[0]
    return "Check the form and try again."


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cells(row: list) -> list:
    """A row's cells as a spreadsheet should show them: text starting like a formula (`=HYPERLINK(...)` in an
    uploaded line, a crafted email) gets a leading apostrophe, OWASP's advice against CSV injection. One
    comprehension per row, as an export writes thousands of rows."""
    return [("'" + cell) if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell for cell in row]


def csv_response(request, rows: Iterator[list[list]], filename: str) -> StreamingHttpResponse:
    """Stream `rows` (an iterator of batches of rows) as CSV, one chunk per batch. Under ASGI the batches are
    produced in a worker thread one at a time — a plain generator would make Django buffer the whole file
    before sending it."""

    def chunks() -> Iterator[str]:
        for batch in rows:
            out = io.StringIO()
            csv.writer(out).writerows(map(csv_cells, batch))
            yield out.getvalue()

    if isinstance(request, ASGIRequest):
        sync_chunks = chunks()
        done = object()

        async def streamed():
            while True:
                chunk = await sync_to_async(next, thread_sensitive=True)(sync_chunks, done)
                if chunk is done:
                    return
                yield chunk

        content = streamed()
    else:
        content = chunks()
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
