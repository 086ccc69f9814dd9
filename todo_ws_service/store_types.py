"""The values the store hands out and the refusals it raises (see store.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from todo_ws_service.sql import Values

Row = dict[str, Any]

COLUMNS = "id, title, description, completed, owner_id, created_at, updated_at, version"
_NAMES = tuple(name.strip() for name in COLUMNS.split(","))


def as_todo(values: Values) -> Row:
    """A row in the wire shape of `messages.Todo` (SQLite has no boolean type)."""
    row = dict(zip(_NAMES, values, strict=True))
    row["completed"] = bool(row["completed"])
    return row


def encode(message: dict[str, Any]) -> str:
    """JSON text of a server message (orjson; Sanic sends a str as a text frame)."""
    return orjson.dumps(message).decode()


@dataclass(frozen=True, slots=True)
class Change:
    """A committed change (or the first answer to a repeated keyed write)."""

    rev: int
    event: str  # the encoded event, without any request_id
    replayed: bool = False  # True: an idempotent repeat; nothing was written or sent
    todo_id: int = 0  # the todo changed
    todo: str | None = None  # its JSON after a create or update; None after a delete


@dataclass(frozen=True, slots=True)
class Retention:
    """How long deletions and idempotency keys are kept, and how often they are purged."""

    tombstone_ttl: float = 604_800
    idempotency_ttl: float = 86_400
    purge_interval: float = 300


class Refused(Exception):
    """The write can't be done; raised before anything was written."""


class NotFound(Refused):
    """The user has no such todo."""


class VersionConflict(Refused):
    """`if_version` did not match; `current` is the todo as it is."""

    def __init__(self, current: Row) -> None:
        super().__init__("version conflict")
        self.current = current


class LimitReached(Refused):
    """The user already has `limit` todos (`TODO_MAX_PER_USER`)."""

    def __init__(self, limit: int) -> None:
        super().__init__("limit reached")
        self.limit = limit
