"""The routes tests/test_integrations_role_matrix.py covers, row by row (see tests/support/routes.py)."""

from __future__ import annotations

P = "v1/products/<str:product>"
H = "<str:integration_id>"


def _rows(label_prefix: str, route_prefix: str) -> dict[str, tuple[str, str]]:
    return {
        f"GET {label_prefix}/integrations": ("GET", f"{route_prefix}/integrations"),
        f"POST {label_prefix}/integrations": ("POST", f"{route_prefix}/integrations"),
        f"GET {label_prefix}/integrations/:id": ("GET", f"{route_prefix}/integrations/{H}"),
        f"PUT {label_prefix}/integrations/:id": ("PUT", f"{route_prefix}/integrations/{H}"),
        f"DELETE {label_prefix}/integrations/:id": ("DELETE", f"{route_prefix}/integrations/{H}"),
        f"POST {label_prefix}/integrations/:id/test": ("POST", f"{route_prefix}/integrations/{H}/test"),
        f"POST {label_prefix}/integrations/:id/rotate_secret": ("POST", f"{route_prefix}/integrations/{H}/rotate_secret"),
        f"GET {label_prefix}/integrations/:id/dead_letters": ("GET", f"{route_prefix}/integrations/{H}/dead_letters"),
        f"POST {label_prefix}/integrations/:id/dead_letters/replay":
            ("POST", f"{route_prefix}/integrations/{H}/dead_letters/replay"),
        f"GET {label_prefix}/webhooks": ("GET", f"{route_prefix}/webhooks"),
        f"POST {label_prefix}/webhooks": ("POST", f"{route_prefix}/webhooks"),
        f"GET {label_prefix}/webhooks/:id": ("GET", f"{route_prefix}/webhooks/{H}"),
        f"DELETE {label_prefix}/webhooks/:id": ("DELETE", f"{route_prefix}/webhooks/{H}"),
    }


INTEGRATION_MATRIX_ROUTES: dict[str, tuple[str, str]] = {**_rows("/v1/products/:p", P), **_rows("/v1", "v1")}
