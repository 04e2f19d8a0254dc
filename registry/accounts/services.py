"""Writes for accounts: sign-up and API tokens."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry.accounts.models import ApiToken, hash_key, new_key
from registry.common.errors import ApiError

User = get_user_model()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # shown once


def register_user(*, username: str, password: str, email: str = ""):
    if User.objects.filter(username__iexact=username).exists():
        raise ApiError("username_taken", f"The username {username!r} is taken.", field="username", status_code=409)
    user = User(username=username, email=email)
    try:
        validate_password(password, user)
    except DjangoValidationError as err:
        raise ApiError("weak_password", " ".join(err.messages), field="password") from err
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as err:
        raise ApiError("username_taken", f"The username {username!r} is taken.", field="username", status_code=409) from err
    return user


def create_token(*, user, name: str) -> IssuedToken:
    from django.conf import settings

    cap = settings.TICKETHUB_MAX_TOKENS_PER_USER
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= cap:
        raise ApiError("too_many_tokens", f"You have {cap} active tokens, the most one account may hold; revoke "
                       "one you no longer use first.", field="name", status_code=409)
    if ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).exists():
        raise ApiError("token_name_taken", f"You already have an active token named {name!r}.", field="name", status_code=409)
    key = new_key()
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(user=user, name=name, key_hash=hash_key(key), key_hint=key[:8])
    except IntegrityError as err:
        raise ApiError("token_name_taken", f"You already have an active token named {name!r}.", field="name", status_code=409) from err
    return IssuedToken(token=token, key=key)


def revoke_token(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
