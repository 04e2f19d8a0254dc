from django.urls import path

from registry.accounts import api

urlpatterns = [
    path("accounts/", api.RegisterApi.as_view(), name="account-register"),
    path("me/", api.MeApi.as_view(), name="me"),
    path("tokens/", api.TokenListCreateApi.as_view(), name="token-list"),
    path("tokens/<int:token_id>/", api.TokenDetailApi.as_view(), name="token-detail"),
]
