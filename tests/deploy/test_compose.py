"""compose.yaml is checked as a file: no container engine runs here (see test_compose_stack)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from shared.server import parse_args
from shared.settings import AuthSettings, GatewaySettings, TodoSettings, validate_db_url
from tests.deploy.compose_file import AppService, app_services, load_compose
from tests.support import REPO_ROOT

SETTINGS_BY_MODULE = {
    "auth_service": AuthSettings,
    "todo_ws_service": TodoSettings,
    "gateway": GatewaySettings,
}
DEFAULT_PORTS = {"gateway": 8000, "auth_service": 8001, "todo_ws_service": 8002}


def test_compose_has_the_whole_topology() -> None:
    services = load_compose()["services"]
    assert {"postgres", "redis", "auth_service", "gateway"} <= set(services)
    modules = [s.module for s in app_services(load_compose())]
    assert modules.count("todo_ws_service") == 2, "two todo replicas"
    assert modules.count("auth_service") == 1 and modules.count("gateway") == 1
    for name, spec in services.items():
        assert "healthcheck" in spec, f"{name} has no healthcheck"
    assert services["gateway"]["ports"] == ["8000:8000"]


@pytest.mark.parametrize("service", app_services(load_compose()), ids=lambda s: s.name)
def test_app_command_and_environment_match_the_cli(service: AppService) -> None:
    args = parse_args(
        service.module,
        DEFAULT_PORTS[service.module],
        ["--host", service.host, "--port", str(service.port)],
    )
    assert (args.host, args.port) == ("0.0.0.0", DEFAULT_PORTS[service.module])
    assert (REPO_ROOT / service.module / "__main__.py").exists()

    known = {name.upper() for name in SETTINGS_BY_MODULE[service.module].model_fields}
    unknown = set(service.environment) - known
    assert not unknown, f"{service.name} sets variables its settings do not read: {unknown}"

    for name, value in service.environment.items():
        if name.endswith("_DB_URL"):
            validate_db_url(value)
        if name == "JWT_SECRET":
            assert re.fullmatch(r"\$\{JWT_SECRET:\?.+\}", value), "secret must come from outside"


def test_gateway_upstreams_point_at_compose_services() -> None:
    compose = load_compose()
    by_name = {s.name: s for s in app_services(compose)}
    gateway = by_name["gateway"]
    for variable, module in (
        ("AUTH_UPSTREAMS", "auth_service"),
        ("TODO_UPSTREAMS", "todo_ws_service"),
    ):
        urls = gateway.environment[variable].split(",")
        assert urls, variable
        for url in urls:
            parts = urlsplit(url)
            target = by_name[parts.hostname or ""]
            assert target.module == module and target.port == parts.port
    assert len(gateway.environment["TODO_UPSTREAMS"].split(",")) == 2


def test_database_and_redis_hosts_are_compose_services() -> None:
    compose = load_compose()
    for service in app_services(compose):
        for name, value in service.environment.items():
            if name.endswith("_DB_URL") or name == "REDIS_URL":
                assert urlsplit(value).hostname in compose["services"], (service.name, name)


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for package in ("shared", "auth_service", "todo_ws_service", "gateway"):
        assert f"COPY {package} ./{package}" in dockerfile
