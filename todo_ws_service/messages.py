"""Every message of the todo WebSocket protocol, as pydantic models (CONTRACT.md section 4).

The service validates client messages with these models and the tests check every server
message against them, so this module is the one place the wire shapes are written down.

Client to server: `GetAllTodos`, `CreateTodo`, `UpdateTodo`, `DeleteTodo`, and in protocol
1.1 `Sync` and `RefreshToken` (picked by their `action`; `parse_request` turns a decoded
frame into one of them or a `ProtocolError`).
Server to client: `TodosList`, `TodosDelta`, `TodoCreated`, `TodoUpdated`, `TodoDeleted`,
`TokenRefreshed`, `ErrorMessage` (`ServerMessage` is their union, keyed by `type`).
The AsyncAPI document (`asyncapi.py`) is generated from these models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from todo_ws_service.models import DESCRIPTION_MAX, TITLE_MAX

REQUEST_ID_MAX = 64
# Ids are BIGINT in the database; anything larger could never name a todo.
TODO_ID_MAX = 2**63 - 1

ErrorCode = Literal[
    "invalid_json",
    "invalid_message",
    "validation_error",
    "not_found",
    "rate_limited",
    "auth_failed",
    "token_expired",
    "internal_error",
    "conflict",
    "idempotency_key_reused",
    # Limits against abuse (CONTRACT.md section 7).
    "too_many_connections",
    "limit_reached",
]

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)]
TodoId = Annotated[int, Field(gt=0, le=TODO_ID_MAX)]
RequestId = Annotated[str, StringConstraints(max_length=REQUEST_ID_MAX)]
IDEMPOTENCY_KEY_MAX = 64
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)]
# `version` is an INTEGER column.
VERSION_MAX = 2**31 - 1
IfVersion = Annotated[int, Field(gt=0, le=VERSION_MAX)]
TOKEN_MAX = 8192

# Strict: no "5" for 5, no 1 for true. Unknown fields in a payload are errors.
_PAYLOAD = ConfigDict(extra="forbid", strict=True)
# The envelope ignores keys it does not know (a newer client may send more).
_ENVELOPE = ConfigDict(extra="ignore", strict=True)


class TodoCreate(BaseModel):
    """A new todo: title 1-200 chars after trimming; description up to 2000 chars or null."""

    model_config = _PAYLOAD

    title: Title
    description: Description | None = None
    completed: bool = False


class TodoUpdate(BaseModel):
    """A non-empty subset of TodoCreate's fields, same rules; only `description` may be null."""

    model_config = _PAYLOAD

    title: Title | None = None
    description: Description | None = None
    completed: bool | None = None

    @field_validator("title", "completed", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields the client sent: absent is fine, an explicit null is not.
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _non_empty(self) -> TodoUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, description, completed")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their (trimmed) values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class EmptyPayload(BaseModel):
    """`get_all_todos` takes no parameters: `{}`, null or nothing."""

    model_config = _PAYLOAD


class GetAllTodos(BaseModel):
    model_config = _ENVELOPE

    action: Literal["get_all_todos"]
    payload: EmptyPayload | None = None
    request_id: RequestId | None = None


class CreateTodo(BaseModel):
    model_config = _ENVELOPE

    action: Literal["create_todo"]
    payload: TodoCreate
    idempotency_key: IdempotencyKey | None = None
    request_id: RequestId | None = None


class UpdateTodo(BaseModel):
    model_config = _ENVELOPE

    action: Literal["update_todo"]
    todo_id: TodoId
    payload: TodoUpdate
    if_version: IfVersion | None = None
    idempotency_key: IdempotencyKey | None = None
    request_id: RequestId | None = None


class DeleteTodo(BaseModel):
    model_config = _ENVELOPE

    action: Literal["delete_todo"]
    todo_id: TodoId
    if_version: IfVersion | None = None
    idempotency_key: IdempotencyKey | None = None
    request_id: RequestId | None = None


class Sync(BaseModel):
    """Ask for the changes after revision `since` (a `todos_delta`, or a `todos_list`).

    Like `?since=` at connect, anything but a non-negative integer gets a full list.
    """

    model_config = _ENVELOPE

    action: Literal["sync"]
    since: Annotated[int, Field(ge=0)] | None = None
    request_id: RequestId | None = None

    @field_validator("since", mode="before")
    @classmethod
    def _unusable_is_none(cls, value: object) -> object:
        usable = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return value if usable else None


class TokenPayload(BaseModel):
    """Any string: it is verified as at connect (an empty or huge one is `auth_failed`)."""

    model_config = _PAYLOAD

    token: str


class RefreshToken(BaseModel):
    """A new access token for the open socket: its expiry moves to the token's `exp`."""

    model_config = _ENVELOPE

    action: Literal["refresh_token"]
    payload: TokenPayload
    request_id: RequestId | None = None


ClientRequest = GetAllTodos | CreateTodo | UpdateTodo | DeleteTodo | Sync | RefreshToken
WriteRequest = CreateTodo | UpdateTodo | DeleteTodo

REQUEST_MODELS: Final[dict[str, type[ClientRequest]]] = {
    "get_all_todos": GetAllTodos,
    "create_todo": CreateTodo,
    "update_todo": UpdateTodo,
    "delete_todo": DeleteTodo,
    "sync": Sync,
    "refresh_token": RefreshToken,
}


# ---------------------------------------------------------------- server to client


class Todo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    title: str
    description: str | None
    completed: bool
    owner_id: int
    created_at: datetime
    updated_at: datetime
    # 1 when created, +1 on every update.
    version: int


class TodosList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["todos_list"]
    data: list[Todo]
    # The user's revision this snapshot reflects.
    rev: int
    request_id: str | None = None


class DeltaData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upserted: list[Todo]
    deleted: list[int]


class TodosDelta(BaseModel):
    """The todos changed after revision `since` and the ids deleted after it, up to `rev`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["todos_delta"]
    since: int
    rev: int
    data: DeltaData
    request_id: str | None = None


class TodoCreated(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["todo_created"]
    rev: int
    data: Todo
    request_id: str | None = None


class TodoUpdated(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["todo_updated"]
    rev: int
    data: Todo
    request_id: str | None = None


class DeletedTodoRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    todo_id: int


class TodoDeleted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["todo_deleted"]
    rev: int
    data: DeletedTodoRef
    request_id: str | None = None


class TokenRefreshed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["token_refreshed"]
    # When the socket now expires (the new token's `exp`).
    expires_at: datetime
    request_id: str | None = None


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class ErrorMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["error"]
    code: ErrorCode
    message: str
    details: list[ErrorDetail] | None = None
    # `conflict` only: the todo as it is now.
    data: Todo | None = None
    request_id: str | None = None


ServerMessage = Annotated[
    TodosList
    | TodosDelta
    | TodoCreated
    | TodoUpdated
    | TodoDeleted
    | TokenRefreshed
    | ErrorMessage,
    Field(discriminator="type"),
]
server_message_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


# ---------------------------------------------------------------- parsing


class ProtocolError(Exception):
    """A client message we answer with an `error` reply; the socket stays open."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: list[dict[str, str]] | None = None,
        request_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.data = data


def error_message(
    code: ErrorCode,
    message: str,
    details: list[dict[str, str]] | None = None,
    request_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `error` server message as a dict ready to encode."""
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if details is not None:
        body["details"] = details
    if data is not None:
        body["data"] = data
    if request_id is not None:
        body["request_id"] = request_id
    return body


def request_id_of(message: dict[str, Any]) -> str | None:
    """The message's `request_id` if it is a valid one, else None (it is then not echoed)."""
    value = message.get("request_id")
    if isinstance(value, str) and len(value) <= REQUEST_ID_MAX:
        return value
    return None


_ENVELOPE_FIELDS = frozenset(
    {"action", "todo_id", "request_id", "if_version", "idempotency_key", "since"}
)


def parse_request(message: Any) -> ClientRequest:
    """Validate one decoded client frame; raise `ProtocolError` with the contract's code."""
    if not isinstance(message, dict):
        raise ProtocolError("invalid_json", "a message must be a JSON object")
    request_id = request_id_of(message)
    if "request_id" in message and message["request_id"] is not None and request_id is None:
        raise ProtocolError(
            "invalid_message", f"request_id must be a string of at most {REQUEST_ID_MAX} chars"
        )
    action = message.get("action")
    model = REQUEST_MODELS.get(action) if isinstance(action, str) else None
    if model is None:
        known = ", ".join(REQUEST_MODELS)
        raise ProtocolError(
            "invalid_message", f"action missing or unknown (one of {known})", None, request_id
        )
    try:
        return model.model_validate(message)
    except ValidationError as exc:
        raise _protocol_error(exc, request_id) from None


def _protocol_error(exc: ValidationError, request_id: str | None) -> ProtocolError:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    for err in errors:
        if err["loc"] and err["loc"][0] in _ENVELOPE_FIELDS:
            name = err["loc"][0]
            if name == "todo_id":
                text = "todo_id must be a positive integer"
            elif name == "if_version":
                text = f"if_version must be an integer from 1 to {VERSION_MAX}"
            elif name == "idempotency_key":
                text = f"idempotency_key must be a string of 1-{IDEMPOTENCY_KEY_MAX} chars"
            else:
                text = f"{name}: {err['msg']}"
            return ProtocolError("invalid_message", text, None, request_id)
    details = [
        {
            "field": ".".join(str(part) for part in err["loc"][1:]) or "payload",
            "message": err["msg"].removeprefix("Value error, "),
        }
        for err in errors
    ]
    return ProtocolError("validation_error", "the payload is not valid", details, request_id)
