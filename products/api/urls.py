from django.urls import path

from products.api import views

urlpatterns = [
    path("v1/products", views.ProductListView.as_view(), name="product-list"),
    path("v1/user/products", views.UserProductListView.as_view(), name="user-product-list"),
    path("v1/orgs/<str:org>/products", views.OrgProductListView.as_view(), name="org-product-list"),
    path("v1/products/<str:product>", views.ProductDetailView.as_view(), name="product-detail"),
    path("v1/products/<str:product>/team", views.ProductTeamView.as_view(), name="product-team"),
    path("v1/products/<str:product>/team/<str:username>", views.ProductTeamMemberView.as_view(),
         name="product-team-member"),
    path("v1/products/<str:product>/team/<str:username>/token", views.ProductTeamTokenView.as_view(),
         name="product-team-token"),
    path("v1/products/<str:product>/clients", views.ProductClientListView.as_view(), name="product-client-list"),
    path("v1/products/<str:product>/clients/<str:client_id>", views.ProductClientDetailView.as_view(),
         name="product-client-detail"),
]
