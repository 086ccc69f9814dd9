"""The AsyncAPI 3.0 document of the todo WebSocket protocol (CONTRACT.md sections 4, 6, 7).

Every message shape is generated from the pydantic models in `messages.py` (the ones the
service validates with); this module only adds the prose: what each action answers, what
each error and close code means. `asyncapi_document()` builds it once. The schemas are
JSON Schema draft-07 (AsyncAPI's default schema format): pydantic's `$defs` become
`components.schemas` and its few 2020-12-only keywords are rewritten.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any, Final, get_args

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from todo_ws_service.asyncapi_text import (
    CHANNEL_DESCRIPTION,
    CLOSE_CODES,
    ERROR_CODES,
    EXAMPLES,
    INFO_DESCRIPTION,
    SUMMARIES,
    close_code_table,
)
from todo_ws_service.messages import REQUEST_MODELS, ErrorCode, ServerMessage

ASYNCAPI_VERSION: Final = "3.0.0"
PROTOCOL_VERSION: Final = "1.1.0"
GATEWAY_HOST: Final = "localhost:8000"
CHANNEL_ADDRESS: Final = "/ws_ep/ws"
CHANNEL: Final = "todo"
REF_TEMPLATE: Final = "#/components/schemas/{model}"
logger = logging.getLogger(__name__)

# Which server messages answer each action (besides `error`, which any action may get).
REPLIES: Final[dict[str, tuple[str, ...]]] = {
    "get_all_todos": ("todos_list",),
    "create_todo": ("todo_created",),
    "update_todo": ("todo_updated",),
    "delete_todo": ("todo_deleted",),
    "sync": ("todos_delta", "todos_list"),
    "refresh_token": ("token_refreshed",),
}
# Server messages sent without a request: the first message, fan-out, connection errors.
UNSOLICITED: Final[dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "sendFirstMessage": (
        "The first message after the handshake",
        "`todos_list` (or `todos_delta` when `since` is answerable); with a bad token the "
        "`error` `auth_failed` (then close 1008), with too many sockets `too_many_connections` "
        "(then close 1013).",
        ("todos_list", "todos_delta", "error"),
    ),
    "sendChanges": (
        "Changes of the user's todos, to every open socket of the user",
        "Each change once, in increasing `rev` order with no gap; a `todos_delta` (or a "
        "`todos_list`) covers revisions that could not be delivered as events.",
        ("todo_created", "todo_updated", "todo_deleted", "todos_delta", "todos_list"),
    ),
    "sendConnectionError": (
        "Errors not caused by one request",
        "`token_expired` when the socket's token expires (then close 1008).",
        ("error",),
    ),
}


def client_models() -> dict[str, type[BaseModel]]:
    """Client messages by `action`, as the service dispatches them."""
    return dict(REQUEST_MODELS)


def server_models() -> dict[str, type[BaseModel]]:
    """Server messages by `type`, from the `ServerMessage` union."""
    union = get_args(ServerMessage)[0]
    return {_literal(model, "type"): model for model in get_args(union)}


def _literal(model: type[BaseModel], field: str) -> str:
    (value,) = get_args(model.model_fields[field].annotation)
    return str(value)


def to_draft07(node: Any) -> Any:
    """A pydantic (JSON Schema 2020-12) schema rewritten for draft-07, recursively."""
    if isinstance(node, list):
        return [to_draft07(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_draft07(value) for key, value in node.items()}
    if "$defs" in out:
        raise ValueError("nested $defs: generate with models_json_schema")
    if "prefixItems" in out:  # tuples
        rest = out.pop("items", None)
        out["items"] = out.pop("prefixItems")
        if rest is not None:
            out["additionalItems"] = rest
    for old in ("dependentRequired", "dependentSchemas"):
        if old in out:
            out.setdefault("dependencies", {}).update(out.pop(old))
    if isinstance(out.get("discriminator"), dict):  # OpenAPI-style: AsyncAPI wants the name
        out["discriminator"] = out["discriminator"]["propertyName"]
    if "$ref" in out and len(out) > 1:  # draft-07 ignores a $ref's siblings
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def component_schemas() -> tuple[dict[str, str], dict[str, Any]]:
    """(message name -> schema name, components.schemas) generated from the models."""
    # Client messages as the service validates them, server messages as it serializes them.
    wanted: list[tuple[str, type[BaseModel], JsonSchemaMode]] = [
        *((name, model, "validation") for name, model in client_models().items()),
        *((name, model, "serialization") for name, model in server_models().items()),
    ]
    pairs = [(model, mode) for _, model, mode in wanted]
    keys, top = models_json_schema(pairs, ref_template=REF_TEMPLATE)
    names = {name: keys[(model, mode)]["$ref"].rsplit("/", 1)[1] for name, model, mode in wanted}
    return names, to_draft07(top["$defs"])


def error_code_table() -> dict[str, dict[str, str]]:
    """Every `ErrorCode`: when it is sent and what happens to the socket."""
    table = {}
    for code in get_args(ErrorCode):
        when, socket = ERROR_CODES.get(code, ("see CONTRACT.md", "stays open"))
        table[code] = {"when": when, "connection": socket}
    return table


def _message(name: str, schema: str, model: type[BaseModel], kind: str) -> dict[str, Any]:
    doc = (model.__doc__ or "").strip().split("\n\n")[0]
    message: dict[str, Any] = {
        "name": name,
        "title": f"{name} ({kind})",
        "summary": SUMMARIES.get(name) or doc or f"The `{name}` {kind} message.",
        "contentType": "application/json",
        "correlationId": {"$ref": "#/components/correlationIds/requestId"},
        "payload": {"$ref": REF_TEMPLATE.format(model=schema)},
    }
    example = EXAMPLES.get(name)
    if example is None:
        return message
    try:  # only examples the service itself would accept or send
        model.model_validate_json(json.dumps(example))
    except ValidationError:
        logger.warning("the AsyncAPI example of %s does not fit its model: left out", name)
    else:
        message["examples"] = [{"name": f"{name}_example", "payload": example}]
    return message


def _refs(names: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"$ref": f"#/channels/{CHANNEL}/messages/{name}"} for name in names]


def build_document() -> dict[str, Any]:
    """The whole AsyncAPI 3.0.0 document, freshly generated."""
    names, schemas = component_schemas()
    clients, servers = client_models(), server_models()
    messages: dict[str, Any] = {}
    for action, model in clients.items():
        messages[action] = _message(action, names[action], model, "client action")
    for kind, model in servers.items():
        messages[kind] = _message(kind, names[kind], model, "server message")
    messages["error"]["x-error-codes"] = error_code_table()
    messages["error"]["description"] = "Error codes (`code`):\n\n" + "\n".join(
        f"- `{code}`: {row['when']} (connection {row['connection']})"
        for code, row in error_code_table().items()
    )
    operations: dict[str, Any] = {}
    for action in clients:
        replies = (*REPLIES.get(action, ()), "error")
        operations[f"receive_{action}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "title": f"Client sends {action}",
            "summary": f"Answered (to the asker only) with {', '.join(replies)}.",
            "messages": _refs((action,)),
            "reply": {"channel": {"$ref": f"#/channels/{CHANNEL}"}, "messages": _refs(replies)},
        }
    for op_id, (title, summary, sent) in UNSOLICITED.items():
        operations[op_id] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "title": title,
            "summary": summary,
            "messages": _refs(sent),
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:todo-realtime:todo-ws",
        "info": {
            "title": "Todo WebSocket protocol",
            "version": PROTOCOL_VERSION,
            "description": INFO_DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {
                "host": GATEWAY_HOST,
                "protocol": "ws",
                "title": "The gateway",
                "description": "Browsers connect through the gateway, which forwards "
                "`/ws_ep/*` to a todo service replica (itself on port 8002).",
            }
        },
        "channels": {
            CHANNEL: {
                "address": CHANNEL_ADDRESS,
                "title": "The todo socket",
                "description": CHANNEL_DESCRIPTION + "\n\n" + close_code_table(),
                "servers": [{"$ref": "#/servers/gateway"}],
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
                "bindings": {"ws": _ws_binding()},
                "x-close-codes": {str(code): text for code, text in CLOSE_CODES.items()},
            }
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "correlationIds": {
                "requestId": {
                    "description": "The client's `request_id`, echoed on the direct reply.",
                    "location": "$message.payload#/request_id",
                }
            },
        },
    }


def _ws_binding() -> dict[str, Any]:
    return {
        "method": "GET",
        "query": {
            "type": "object",
            "required": ["token"],
            "properties": {
                "token": {"type": "string", "description": "The access token (a JWT)."},
                "since": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Resume: the first message is a `todos_delta` after this "
                    "revision when answerable, else a full `todos_list`.",
                },
            },
        },
        "bindingVersion": "0.1.0",
    }


@cache
def asyncapi_document() -> dict[str, Any]:
    """The document, generated once per process (do not mutate it)."""
    return build_document()


@cache
def asyncapi_json() -> bytes:
    """The document as the UTF-8 JSON served at `/ws_ep/asyncapi.json`."""
    return json.dumps(asyncapi_document(), indent=2, ensure_ascii=False).encode()
