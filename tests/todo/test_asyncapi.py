"""The protocol document (CONTRACT.md section 6): `/ws_ep/asyncapi.json` and `/ws_ep/docs`.

The document a real todo service serves (directly and through the gateway) must pass the
official AsyncAPI parser (`@asyncapi/parser`, run by node from `tests/todo/asyncapi/`,
installed by `npm ci` in scripts/test.sh), name every action, message, error and close code
of the contract, and carry the schemas pydantic generates from `messages.py`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from pydantic.json_schema import JsonSchemaMode

from tests.support import IN_CI, ServiceProcess, free_port
from tests.todo.conftest import start_todo_service
from todo_ws_service.asyncapi import REF_TEMPLATE, server_models, to_draft07
from todo_ws_service.messages import REQUEST_MODELS, ErrorCode

VALIDATOR_DIR = Path(__file__).parent / "asyncapi"
ACTIONS = ["get_all_todos", "create_todo", "update_todo", "delete_todo", "sync", "refresh_token"]
TYPES = [
    "todos_list",
    "todos_delta",
    "todo_created",
    "todo_updated",
    "todo_deleted",
    "token_refreshed",
    "error",
]
ERROR_CODES = [
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
    "too_many_connections",
    "limit_reached",
]
CLOSE_CODES = ["1000", "1001", "1007", "1008", "1009", "1011", "1013", "1014"]


@pytest.fixture(scope="module")
def servers(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """A todo service on SQLite, and a gateway in front of it."""
    tmp = tmp_path_factory.mktemp("asyncapi")
    todo = start_todo_service(jwt_env, f"sqlite://{tmp}/todo.sqlite3", tmp)
    gateway_env = {
        "AUTH_UPSTREAMS": f"http://127.0.0.1:{free_port()}",
        "TODO_UPSTREAMS": todo.url,
    }
    try:
        gateway = ServiceProcess("gateway", gateway_env, tmp).start()
    except Exception:
        todo.stop()
        raise
    yield todo, gateway
    gateway.stop()
    todo.stop()


@pytest.fixture(scope="module")
def document(servers: tuple[ServiceProcess, ServiceProcess]) -> dict[str, Any]:
    response = httpx.get(servers[0].url + "/ws_ep/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


def node_validator() -> list[str]:
    """The command running the official parser; fails in CI, skips elsewhere, without it."""
    node = shutil.which("node")
    installed = (VALIDATOR_DIR / "node_modules" / "@asyncapi" / "parser").is_dir()
    if node is None or not installed:
        missing = "node" if node is None else "tests/todo/asyncapi/node_modules"
        reason = f"{missing} missing: run `npm ci --prefix tests/todo/asyncapi`"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return [node, str(VALIDATOR_DIR / "validate.mjs")]


def test_document_passes_the_official_asyncapi_parser(
    document: dict[str, Any], tmp_path: Path
) -> None:
    command = node_validator()
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document))
    result = subprocess.run(
        [*command, str(path), "--strict"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["version"] == "1.1.0"


def test_validator_rejects_a_broken_document(document: dict[str, Any], tmp_path: Path) -> None:
    """The parser really checks: a payload type that does not exist is an error."""
    command = node_validator()
    broken = json.loads(json.dumps(document))
    broken["components"]["schemas"]["Todo"]["properties"]["id"]["type"] = "int"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "components.schemas.Todo" in result.stdout


def test_gateway_serves_the_same_document(
    servers: tuple[ServiceProcess, ServiceProcess], document: dict[str, Any]
) -> None:
    response = httpx.get(servers[1].url + "/ws_ep/asyncapi.json")
    assert response.status_code == 200
    assert response.json() == document


def test_document_covers_the_whole_contract(document: dict[str, Any]) -> None:
    channel = document["channels"]["todo"]
    assert channel["address"] == "/ws_ep/ws"
    assert document["servers"]["gateway"]["protocol"] == "ws"
    query = channel["bindings"]["ws"]["query"]
    assert query["required"] == ["token"]
    assert query["properties"]["since"]["type"] == "integer"
    assert query["properties"]["since"]["minimum"] == 0
    messages = document["components"]["messages"]
    assert set(ACTIONS + TYPES) <= set(messages) <= set(channel["messages"])
    received: set[str] = set()
    sent: set[str] = set()
    for op in document["operations"].values():
        names = {ref["$ref"].rsplit("/", 1)[1] for ref in op["messages"]}
        replies = {ref["$ref"].rsplit("/", 1)[1] for ref in op.get("reply", {}).get("messages", [])}
        (received if op["action"] == "receive" else sent).update(names)
        sent.update(replies)
    assert received == set(ACTIONS)
    assert sent == set(TYPES)

    table = messages["error"]["x-error-codes"]
    code_enum = document["components"]["schemas"]["ErrorMessage"]["properties"]["code"]["enum"]
    assert set(ERROR_CODES) <= set(table) == set(code_enum) == set(get_args(ErrorCode))
    for code, row in table.items():
        assert row["when"] != "see CONTRACT.md", f"{code} has no description"
        assert code in messages["error"]["description"]
    assert table["auth_failed"]["connection"].startswith("closed with 1008")
    assert table["conflict"]["connection"] == "stays open"
    assert table["too_many_connections"]["connection"] == "closed with 1013"
    assert table["limit_reached"]["connection"] == "stays open"

    assert sorted(channel["x-close-codes"]) == CLOSE_CODES
    for code in CLOSE_CODES:
        assert f"`{code}`" in channel["description"]


def test_schemas_are_generated_from_the_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    messages = document["components"]["messages"]
    models = {**REQUEST_MODELS, **server_models()}
    assert set(models) == set(ACTIONS + TYPES)
    for name, model in models.items():
        mode: JsonSchemaMode = "validation" if name in REQUEST_MODELS else "serialization"
        generated = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
        nested = generated.pop("$defs", {})
        assert schemas[model.__name__] == to_draft07(generated), name
        for nested_name, nested_schema in nested.items():
            assert schemas[nested_name] == to_draft07(nested_schema), nested_name
        assert messages[name]["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        examples = messages[name]["examples"]
        assert examples, f"{name} has no example that fits its model"
        for example in examples:
            model.model_validate_json(json.dumps(example["payload"]))
    assert "$defs" not in json.dumps(document)


def test_docs_page_is_self_contained(servers: tuple[ServiceProcess, ServiceProcess]) -> None:
    response = httpx.get(servers[1].url + "/ws_ep/docs")  # as a browser gets it
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    for word in ACTIONS + TYPES + ERROR_CODES + CLOSE_CODES:
        assert f"<code>{word}</code>" in page, word
    lowered = page.lower()
    for external in ("<script", "<link", "<iframe", "<img", "@import", "url(", "src="):
        assert external not in lowered, external
    assert "http://" not in lowered
    assert "https://" not in lowered
