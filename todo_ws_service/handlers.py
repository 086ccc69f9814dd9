"""The dispatch table: one plain async function per client action.

A handler gets the socket's `Session` (its user, the store, the token codec) and the
validated request, and returns a `Reply`. It raises `ProtocolError` for an answer like
`not_found`. It never touches the socket: ordering, request ids, fan-out and error replies
belong to the socket loop (`connection.py`) and the hub (`fanout.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from shared.tokens import AccessTokenCodec
from todo_ws_service.auth import AuthFailed, User, authenticate
from todo_ws_service.idempotency import KeyReused, key_for
from todo_ws_service.messages import (
    TOKEN_MAX,
    ClientRequest,
    CreateTodo,
    DeleteTodo,
    GetAllTodos,
    ProtocolError,
    RefreshToken,
    Sync,
    UpdateTodo,
)
from todo_ws_service.store import (
    Change,
    LimitReached,
    NotFound,
    TodoStore,
    VersionConflict,
    encode,
)


@dataclass(frozen=True, slots=True)
class Session:
    """What a handler may use: who is asking, and the service's parts."""

    user: User
    store: TodoStore
    codec: AccessTokenCodec


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one request, encoded without its `request_id`."""

    frame: str
    # The revision it carries: a change's, or the state a list or delta reflects.
    rev: int | None = None
    # A change every socket of the user must see (False for an idempotent repeat).
    broadcast: bool = False
    # A list or delta: the asking socket's state is now `rev`.
    snapshot: bool = False
    # refresh_token: the socket now expires at this Unix time.
    expires_at: int | None = None


async def get_all_todos(session: Session, request: GetAllTodos) -> Reply:
    rev, frame = await session.store.list_frame(session.user.id)
    return Reply(frame, rev, snapshot=True)


async def sync(session: Session, request: Sync) -> Reply:
    rev, frame = await session.store.sync_frame(session.user.id, request.since)
    return Reply(frame, rev, snapshot=True)


async def create_todo(session: Session, request: CreateTodo) -> Reply:
    new = request.payload
    key = None
    if request.idempotency_key is not None:
        key = key_for(request.idempotency_key, request.action, None, new.model_dump())
    try:
        change = await session.store.create(
            session.user.id, new.title, new.description, new.completed, key
        )
    except _REFUSALS as refusal:
        raise _refused(refusal, None) from None
    return _change_reply(change)


async def update_todo(session: Session, request: UpdateTodo) -> Reply:
    changes = request.payload.changes()
    key = key_for(request.idempotency_key, request.action, request.todo_id, changes)
    try:
        change = await session.store.update(
            session.user.id, request.todo_id, changes, request.if_version, key
        )
    except _REFUSALS as refusal:
        raise _refused(refusal, request.todo_id) from None
    return _change_reply(change)


async def delete_todo(session: Session, request: DeleteTodo) -> Reply:
    key = key_for(request.idempotency_key, request.action, request.todo_id, None)
    try:
        change = await session.store.delete(
            session.user.id, request.todo_id, request.if_version, key
        )
    except _REFUSALS as refusal:
        raise _refused(refusal, request.todo_id) from None
    return _change_reply(change)


async def refresh_token(session: Session, request: RefreshToken) -> Reply:
    token = request.payload.token
    try:
        if len(token) > TOKEN_MAX:
            raise AuthFailed("missing or invalid token")
        user = authenticate(session.codec, token)
    except AuthFailed as exc:
        raise ProtocolError("auth_failed", f"{exc}; the socket keeps its current token") from None
    if user.id != session.user.id:
        raise ProtocolError("auth_failed", "the token is for another user") from None
    expires_at = datetime.fromtimestamp(user.expires_at, UTC).isoformat()
    message = {"type": "token_refreshed", "expires_at": expires_at}
    return Reply(encode(message), expires_at=user.expires_at)


def _change_reply(change: Change) -> Reply:
    return Reply(change.event, change.rev, broadcast=not change.replayed)


_REFUSALS = (NotFound, VersionConflict, KeyReused, LimitReached)


def _refused(refusal: Exception, todo_id: int | None) -> ProtocolError:
    """The contract's error reply for a write the store refused."""
    if isinstance(refusal, VersionConflict):
        text = "the todo has changed: data is its current state"
        return ProtocolError("conflict", text, data=refusal.current)
    if isinstance(refusal, KeyReused):
        return ProtocolError("idempotency_key_reused", "this key was used for another write")
    if isinstance(refusal, LimitReached):
        text = f"you have {refusal.limit} todos, the most allowed: delete some first"
        return ProtocolError("limit_reached", text)
    return ProtocolError("not_found", f"todo {todo_id} not found")


Handler = Callable[[Session, Any], Awaitable[Reply]]

HANDLERS: Final[dict[type[ClientRequest], Handler]] = {
    GetAllTodos: get_all_todos,
    CreateTodo: create_todo,
    UpdateTodo: update_todo,
    DeleteTodo: delete_todo,
    Sync: sync,
    RefreshToken: refresh_token,
}


async def dispatch(session: Session, request: ClientRequest) -> Reply:
    """Run the handler for `request`'s action."""
    return await HANDLERS[type(request)](session, request)
