"""Verification endpoints, included at the root by registry/urls.py (optional app)."""

from django.urls import path

from registry.verifications import views

urlpatterns = [
    path("api/v1/verification-policy/", views.VerificationPolicyView.as_view(), name="verification-policy"),
    path("api/v1/verifications/<int:pk>/", views.VerificationDetailView.as_view(), name="verification-detail"),
    path("api/v1/revisions/<str:commit>/verifications/", views.RevisionVerificationsView.as_view(),
         name="revision-verifications"),
    path("api/v1/revisions/<str:commit>/verifications/transfer/", views.TransferVerificationView.as_view(),
         name="revision-transfer-verification"),
]
