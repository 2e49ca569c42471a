from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "products"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Invitations live in console/, below this app: it asks here for a product's team by id.
        from console import hooks
        from products.services import product_team_by_id, sandbox_products_check, sandbox_products_delete

        hooks.register_product_team_by_id(product_team_by_id)
        # Deleting an account (console/services/users.py) asks here about the sandbox's products.
        hooks.register_user_delete(check=sandbox_products_check, cleanup=sandbox_products_delete)
