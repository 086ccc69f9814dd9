"""Exactly-once writes: the first reply to a keyed write, stored in its transaction.

A write that carries an `idempotency_key` is fingerprinted (action, todo id, payload). Inside
the write's transaction, after the user's revision row is locked (so two replicas cannot
both miss the key), the key is looked up: the same fingerprint answers the stored reply and
the transaction is rolled back; another fingerprint is `idempotency_key_reused`. Otherwise
the write goes ahead and its reply is stored with it. Keys older than `IDEMPOTENCY_TTL` are
treated as absent and purged in the background.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from todo_ws_service.sql import Tx

_LOOKUP = (
    "SELECT fingerprint, reply, created_at FROM idempotency_keys WHERE owner_id = ? AND key = ?"
)
_DROP = "DELETE FROM idempotency_keys WHERE owner_id = ? AND key = ?"
_STORE = (
    "INSERT INTO idempotency_keys (owner_id, key, fingerprint, reply, created_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
_PURGE = "DELETE FROM idempotency_keys WHERE created_at < ?"


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


async def check(tx: Tx, owner_id: int, key: Key, now: float, ttl: float) -> None:
    """Raise `Replayed` or `KeyReused` if the key is live; drop it if it has expired."""
    row = await tx.one(_LOOKUP, owner_id, key.key)
    if row is None:
        return
    fingerprint, reply, created_at = row
    if created_at < now - ttl:
        await tx.one(_DROP, owner_id, key.key)
        return
    if fingerprint != key.fingerprint:
        raise KeyReused
    raise Replayed(reply)


async def remember(tx: Tx, owner_id: int, key: Key, reply: str, now: float) -> None:
    await tx.one(_STORE, owner_id, key.key, key.fingerprint, reply, now)


async def forget_before(tx: Tx, cutoff: float) -> None:
    await tx.all(_PURGE, cutoff)
