"""The tables this service owns: todos, and the bookkeeping of protocol 1.1 (CONTRACT.md 6).

    Todo            a user's todo; `owner_id` is the JWT `sub` as a number, not a foreign key
    UserRevision    one row per user: the revision counter every change bumps
    TodoTombstone   a deleted todo's id and the revision of its deletion, kept for resumes
    IdempotencyKey  the first reply to a write that carried an `idempotency_key`

The hot path reads and writes them with plain SQL (store.py); Tortoise owns the schema and
its migrations.
"""

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
    # 1 when created, +1 on every update.
    version = fields.IntField(default=1, db_default=1)
    # The user's revision of the last change to this todo (what a resume selects on).
    rev = fields.BigIntField(default=0, db_default=0)

    class Meta:
        table = "todos"
        # (owner_id, id): the list, every owner check, and a resume (which reads the user's
        # rows and keeps those with rev > N: an index on (owner_id, rev) would cost a page
        # write on every change to save a little on the rare resume).
        indexes = (("owner_id", "id"),)


class UserRevision(Model):
    """A user's revision `rev` (0 before their first change), and the resume horizon:
    the newest revision whose tombstones have been purged. A resume from below it can't
    know every deletion and gets a full list instead."""

    owner_id = fields.BigIntField(primary_key=True, generated=False)
    rev = fields.BigIntField(default=0)
    horizon = fields.BigIntField(default=0)

    class Meta:
        table = "todo_revisions"


class TodoTombstone(Model):
    """A deletion, remembered `TODO_TOMBSTONE_TTL` seconds (Unix time in `deleted_at`)."""

    id = fields.BigIntField(primary_key=True)
    owner_id = fields.BigIntField()
    todo_id = fields.BigIntField()
    rev = fields.BigIntField()
    deleted_at = fields.FloatField()

    class Meta:
        table = "todo_tombstones"
        # No index on deleted_at: ids grow with time, so the purge deletes a prefix of ids.
        indexes = (("owner_id", "rev"),)


class IdempotencyKey(Model):
    """The first successful reply to a keyed write, stored in the write's transaction.

    `fingerprint` identifies the write (action, todo id, payload) so that the same key
    with another write is refused; `reply` is the event JSON as first sent.
    """

    id = fields.BigIntField(primary_key=True)
    owner_id = fields.BigIntField()
    key = fields.CharField(max_length=64)
    fingerprint = fields.CharField(max_length=64)
    reply = fields.TextField()
    created_at = fields.FloatField()

    class Meta:
        table = "idempotency_keys"
        # No index on created_at (one less B-tree per keyed write): the purge deletes a
        # prefix of ids, which grow with time.
        unique_together = (("owner_id", "key"),)
