"""Accounts API: sign up, who am I, and API tokens (create, list, revoke).

The first token is created with the username and password (HTTP Basic on POST /api/v1/tokens/ only, or
a browser session); later ones with an existing token.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.accounts import services
from registry.accounts.authentication import ApiTokenAuthentication
from registry.accounts.models import ApiToken


def authenticated_user(request: Request) -> User:
    """The request's user behind ``IsAuthenticated`` (an anonymous one is refused before the view runs)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


class TokenOutput(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "key_hint", "created_at", "last_used_at"]


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_scope = "signup"  # per IP (and per "account", i.e. the same IP, for anonymous requests)

    class RegisterInput(serializers.Serializer):
        username = serializers.RegexField(r"\A[A-Za-z0-9_.-]{3,40}\Z", max_length=40)  # \Z: no final newline
        password = serializers.CharField(write_only=True, min_length=8, max_length=128)
        email = serializers.EmailField(required=False, allow_blank=True)

    class RegisterOutput(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()

    @extend_schema(request=RegisterInput, responses={201: RegisterOutput}, summary="Create an account")
    def post(self, request: Request) -> Response:
        data = self.RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.register_user(**data.validated_data)
        return Response(self.RegisterOutput(user).data, status=status.HTTP_201_CREATED)


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: inline_serializer("Me", {"id": serializers.IntegerField(), "username": serializers.CharField()})},
        summary="The authenticated user",
    )
    def get(self, request: Request) -> Response:
        return Response({"id": request.user.pk, "username": request.user.get_username()})


class TokenListCreateApi(APIView):
    authentication_classes = [ApiTokenAuthentication, BasicAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    class TokenCreateInput(serializers.Serializer):
        name = serializers.RegexField(r"\A[A-Za-z0-9 _.:@-]{1,64}\Z", max_length=64,
                                      error_messages={"invalid": "Token names use letters, digits, space and _.:@- (1-64)."})

    class TokenCreatedOutput(TokenOutput):
        key = serializers.CharField(help_text="The token itself; shown once, store it now.")

        class Meta(TokenOutput.Meta):
            fields = [*TokenOutput.Meta.fields, "key"]

    def get_throttles(self):
        self.throttle_scope = "tokens" if self.request.method == "POST" else None
        return super().get_throttles()

    @extend_schema(responses={200: TokenOutput(many=True)}, summary="List your active tokens")
    def get(self, request: Request) -> Response:
        tokens = ApiToken.objects.filter(user=authenticated_user(request), revoked_at__isnull=True)
        return Response(TokenOutput(tokens, many=True).data)

    @extend_schema(request=TokenCreateInput, responses={201: TokenCreatedOutput}, summary="Create a token (the key is shown once)")
    def post(self, request: Request) -> Response:
        data = self.TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.create_token(user=request.user, name=data.validated_data["name"])
        body = TokenOutput(issued.token).data | {"key": issued.key}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={204: None}, summary="Revoke one of your tokens")
    def delete(self, request: Request, token_id: int) -> Response:
        token = get_object_or_404(ApiToken, pk=token_id, user=request.user, revoked_at__isnull=True)
        services.revoke_token(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
