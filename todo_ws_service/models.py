"""The one table this service owns: todos, each belonging to the user named by a JWT `sub`."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

TITLE_MAX = 200
DESCRIPTION_MAX = 2000


class Todo(Model):
    """A user's todo. `owner_id` is the JWT `sub` as a number, not a foreign key."""

    id = fields.BigIntField(primary_key=True)
    owner_id = fields.BigIntField()
    title = fields.CharField(max_length=TITLE_MAX)
    description = fields.TextField(null=True)
    completed = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "todos"
        # Serves "the todos of one user, in id order" (the list and every owner check).
        indexes = (("owner_id", "id"),)
