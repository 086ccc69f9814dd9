"""Exactly-once writes: the first reply to a keyed write, stored in its transaction.

A write that carries an `idempotency_key` is fingerprinted (action, todo id, payload). At
the end of the write's transaction its reply is stored under the key; the user's revision
row, locked since the transaction's first statement, keeps two replicas from racing on one
key. If the key is already there and live, the write is undone (the transaction rolls back):
the same fingerprint answers the stored reply, another is `idempotency_key_reused`. A write
the store refuses (its todo is gone, or its version moved on) looks the key up first: it
may be the repeat of a write that succeeded. Keys older than `IDEMPOTENCY_TTL` count as
absent and are purged in the background.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from todo_ws_service.sql import Tx, purge_prefix

# The common case is one statement: the key is new.
_CLAIM = (
    "INSERT INTO idempotency_keys (owner_id, key, fingerprint, reply, created_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner_id, key) DO NOTHING RETURNING id"
)
_LOOKUP = (
    "SELECT fingerprint, reply, created_at FROM idempotency_keys WHERE owner_id = ? AND key = ?"
)
_REUSE_EXPIRED = (
    "UPDATE idempotency_keys SET fingerprint = ?, reply = ?, created_at = ?"
    " WHERE owner_id = ? AND key = ?"
)


@dataclass(frozen=True, slots=True)
class Key:
    """A write's key and the fingerprint of the write it names."""

    key: str
    fingerprint: str


def key_for(key: str | None, action: str, todo_id: int | None, payload: Any) -> Key | None:
    """The `Key` of a write, or None when it carries no key."""
    if key is None:
        return None
    body = orjson.dumps([action, todo_id, payload], option=orjson.OPT_SORT_KEYS)
    return Key(key, hashlib.sha256(body).hexdigest())


class Replayed(Exception):
    """The write was done before under this key: `reply` is its first answer.

    Raised inside the transaction so that it rolls back (nothing of the repeat is kept).
    """

    def __init__(self, reply: str) -> None:
        super().__init__("replayed")
        self.reply = reply


class KeyReused(Exception):
    """The key names another write."""


async def remember(tx: Tx, owner_id: int, key: Key, reply: str, now: float, ttl: float) -> None:
    """Store `reply` under `key`, or raise `Replayed` / `KeyReused` if the key is live."""
    if await tx.one(_CLAIM, owner_id, key.key, key.fingerprint, reply, now) is not None:
        return
    if await replay_if_known(tx, owner_id, key, now, ttl):
        # Expired, not yet purged: the key is free again.
        await tx.one(_REUSE_EXPIRED, key.fingerprint, reply, now, owner_id, key.key)


async def replay_if_known(tx: Tx, owner_id: int, key: Key, now: float, ttl: float) -> bool:
    """Raise `Replayed` or `KeyReused` if `key` is live; True if it exists but expired."""
    row = await tx.one(_LOOKUP, owner_id, key.key)
    if row is None:
        return False
    fingerprint, first_reply, created_at = row
    if created_at < now - ttl:
        return True
    if fingerprint != key.fingerprint:
        raise KeyReused
    raise Replayed(first_reply)


async def forget_before(tx: Tx, cutoff: float) -> bool:
    """Purge keys older than `cutoff` (Unix time), a chunk at a time; True when done."""
    return await purge_prefix(tx, "idempotency_keys", "created_at", cutoff)
