"""Verification results (read) and the transfer-verification request (owner or admin)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.verifications import selectors, services
from registry.verifications.config import current_policy
from registry.verifications.serializers import TransferRequestSerializer, VerificationSerializer


class VerificationDetailView(generics.RetrieveAPIView):
    """One verification: status, live progress, runs with curves, decision and the policy."""

    serializer_class = VerificationSerializer

    def get_queryset(self):
        return selectors.visible_verifications(self.request.user)


class RevisionVerificationsView(generics.ListAPIView):
    """The verifications of one revision (by commit): its own, then transfers to other tasks."""

    serializer_class = VerificationSerializer
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no commit
            from registry.verifications.models import Verification

            return Verification.objects.none()
        return selectors.verifications_of_revision(self.request.user, self.kwargs["commit"])


class TransferVerificationView(APIView):
    """Request the verification of a revision on another task with the same input shape."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=TransferRequestSerializer, responses={202: VerificationSerializer,
                                                                 200: VerificationSerializer})
    def post(self, request: Request, commit: str) -> Response:
        from registry.tickets.models import Revision

        revision = get_object_or_404(Revision.objects.select_related("ticket__task"), commit=commit)
        body = TransferRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        verification, created = services.request_transfer(
            user=request.user, revision=revision, task_name=body.validated_data["task"],
            claimed_accuracy=body.validated_data.get("claimed_accuracy"),
        )
        data = VerificationSerializer(verification, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class VerificationPolicyView(APIView):
    """The verification policy in force, stated in advance."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("task", str, required=False, description="The policy as applied to a task.")],
        responses={200: OpenApiTypes.OBJECT}, summary="The verification policy in force",
    )
    def get(self, request: Request) -> Response:
        task = request.query_params.get("task")
        return Response(current_policy().as_dict(task))
