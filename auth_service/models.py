"""The tables of the auth service: users and their refresh tokens."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class User(Model):
    """A user account (usernames are unique regardless of letter case).

    `username` is kept as typed; `username_key` (lowercased) carries the unique index, so
    "Alice" and "alice" cannot both exist and either spelling logs in.
    """

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=32)
    username_key = fields.CharField(max_length=32, unique=True)
    password_hash = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    refresh_tokens: fields.ReverseRelation[RefreshToken]

    class Meta:
        table = "users"


class RefreshToken(Model):
    """A refresh token of one login session (its family), stored as a SHA-256 digest.

    Each refresh spends the presented token (`used_at`) and adds a new one to the same
    family. Presenting a spent token again revokes the family (`revoked_at` on every row).
    """

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "auth_service.User", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    family_id = fields.UUIDField(db_index=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_tokens"
