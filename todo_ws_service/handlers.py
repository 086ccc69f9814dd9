"""The dispatch table: one plain async function per client action.

A handler gets the authenticated `User`, the validated request and the store, and returns
a `Reply`: a message for the asking socket only, or an event for every socket of the user.
It raises `ProtocolError` for an answer like `not_found`. It never touches the socket:
ordering, encoding, fan-out and error replies belong to the socket loop (`connection.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from todo_ws_service.auth import User
from todo_ws_service.messages import (
    ClientRequest,
    CreateTodo,
    DeleteTodo,
    GetAllTodos,
    ProtocolError,
    UpdateTodo,
)
from todo_ws_service.store import TodoStore


@dataclass(frozen=True, slots=True)
class Reply:
    message: dict[str, Any]
    # True: a change every socket of the user must see; False: for the asker only.
    broadcast: bool = False


def _not_found(todo_id: int) -> ProtocolError:
    return ProtocolError("not_found", f"todo {todo_id} not found")


async def get_all_todos(user: User, request: GetAllTodos, store: TodoStore) -> Reply:
    return Reply({"type": "todos_list", "data": await store.list_for(user.id)})


async def create_todo(user: User, request: CreateTodo, store: TodoStore) -> Reply:
    new = request.payload
    row = await store.create(user.id, new.title, new.description, new.completed)
    return Reply({"type": "todo_created", "data": row}, broadcast=True)


async def update_todo(user: User, request: UpdateTodo, store: TodoStore) -> Reply:
    row = await store.update(user.id, request.todo_id, request.payload.changes())
    if row is None:
        raise _not_found(request.todo_id)
    return Reply({"type": "todo_updated", "data": row}, broadcast=True)


async def delete_todo(user: User, request: DeleteTodo, store: TodoStore) -> Reply:
    if not await store.delete(user.id, request.todo_id):
        raise _not_found(request.todo_id)
    return Reply({"type": "todo_deleted", "data": {"todo_id": request.todo_id}}, broadcast=True)


Handler = Callable[[User, Any, TodoStore], Awaitable[Reply]]

HANDLERS: Final[dict[type[ClientRequest], Handler]] = {
    GetAllTodos: get_all_todos,
    CreateTodo: create_todo,
    UpdateTodo: update_todo,
    DeleteTodo: delete_todo,
}


async def dispatch(user: User, request: ClientRequest, store: TodoStore) -> Reply:
    """Run the handler for `request`'s action."""
    return await HANDLERS[type(request)](user, request, store)
