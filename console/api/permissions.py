from rest_framework.permissions import BasePermission

from console.scoping import Principal


class IsAuthenticatedPrincipal(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Principal)
