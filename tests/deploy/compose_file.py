"""Reading compose.yaml the way compose does (anchors and merge keys resolved by PyYAML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from tests.support import REPO_ROOT

APP_MODULES = {"auth_service", "todo_ws_service", "gateway"}


@dataclass(frozen=True)
class AppService:
    name: str
    module: str
    host: str
    port: int
    environment: dict[str, str]


def load_compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())  # type: ignore[no-any-return]


def app_services(compose: dict[str, Any]) -> list[AppService]:
    """The services that run one of our modules, parsed from `python -m M --host H --port P`."""
    found = []
    for name, spec in compose["services"].items():
        command = spec.get("command") or []
        if command[:2] != ["python", "-m"] or command[2] not in APP_MODULES:
            continue
        options = dict(zip(command[3::2], command[4::2], strict=True))
        found.append(
            AppService(
                name=name,
                module=command[2],
                host=options["--host"],
                port=int(options["--port"]),
                environment={k: str(v) for k, v in (spec.get("environment") or {}).items()},
            )
        )
    return found
