"""The `observability` profile: Prometheus scrapes each service's own `/metrics`, and the
Grafana dashboard queries only metrics that a real scrape of the services has.

No container engine runs here: the files are checked as files, and the metrics against
the real services started as local processes (the gateway in front, as in compose)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.deploy.compose_file import app_services, load_compose
from tests.scrape import Scrape, scrape
from tests.stack import LocalStack, start_stack
from tests.support import REDIS_URL, REPO_ROOT, new_jwt_secret
from tests.todo.wsclient import Tokens, new_user_id, open_user_socket

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "todo-realtime.json"
PROVISIONING = REPO_ROOT / "deploy" / "grafana" / "provisioning"
PROMETHEUS = REPO_ROOT / "deploy" / "prometheus.yml"
# Our metrics' names start so; PromQL functions and label names never do.
METRIC_NAME = re.compile(r"\b(?:http|service|auth|todo|gateway)_[a-z0-9_]+\b")


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def queried_metrics() -> set[str]:
    return {name for expr in dashboard_queries() for name in METRIC_NAME.findall(expr)}


def test_dashboard_is_a_valid_grafana_dashboard_on_the_provisioned_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    source = sources["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    graphs = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(graphs) >= 10
    for panel in graphs:
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"], panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert METRIC_NAME.search(target["expr"]), target["expr"]
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "todo-realtime.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_prometheus_scrapes_every_app_service_on_its_own_port() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        (job["job_name"], target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = {(s.module, f"{s.name}:{s.port}") for s in app_services(load_compose())}
    assert targets == expected
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"


def test_compose_profile_runs_prometheus_and_grafana_pinned() -> None:
    services = load_compose()["services"]
    for name in ("prometheus", "grafana"):
        spec = services[name]
        assert spec["profiles"] == ["observability"]
        tag = spec["image"].partition(":")[2]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{spec['image']}: pin a version tag"
        for volume in spec["volumes"]:
            source = volume.split(":", 1)[0]
            assert (REPO_ROOT / source).exists(), volume
    for name, spec in services.items():
        if name not in ("prometheus", "grafana"):
            assert "profiles" not in spec, f"{name} runs without the profile"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The three services as compose runs them: the todo service fanning out on Redis."""
    jwt_env = {"JWT_SECRET": new_jwt_secret()}
    running = start_stack(
        tmp_path_factory.mktemp("observability"),
        jwt_env,
        every_env={"REDIS_URL": REDIS_URL, "REDIS_CHANNEL_PREFIX": f"obs-{secrets.token_hex(4)}"},
    )
    yield running
    running.stop()


async def exercise(stack: LocalStack) -> None:
    """One of everything: a registration, a login, a socket through the gateway, messages."""
    credentials = {"username": f"obs{secrets.token_hex(5)}", "password": "correct horse battery"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        assert (await http.post("/auth/register", json=credentials)).status_code == 201
        assert (await http.post("/auth/login", json=credentials)).status_code == 200
    tokens = Tokens(stack.todo.env["JWT_SECRET"])
    user_id = new_user_id()
    sock = await open_user_socket(stack.gateway, tokens, user_id)
    other = await open_user_socket(stack.gateway, tokens, user_id)
    try:
        created = await sock.request({"action": "create_todo", "payload": {"title": "watch"}})
        assert created["type"] == "todo_created"
        assert (await other.recv())["type"] == "todo_created"
        missing = await sock.request({"action": "delete_todo", "todo_id": 2**40})
        assert missing["code"] == "not_found"
    finally:
        await sock.close()
        await other.close()


async def test_every_metric_the_dashboard_queries_is_in_a_real_scrape(stack: LocalStack) -> None:
    await exercise(stack)
    scrapes = {s.name: scrape(s.url) for s in (stack.gateway, stack.auth, stack.todo)}
    names = set().union(*(found.names() for found in scrapes.values()))
    missing = queried_metrics() - names
    assert not missing, f"the dashboard queries metrics no service has: {sorted(missing)}"
    assert queried_metrics() >= {
        "http_requests_total",
        "todo_ws_messages_total",
        "todo_ws_sockets_open",
        "gateway_ws_tunnels_open",
        "auth_logins_total",
        "auth_password_hashes_waiting",
        "todo_fanout_published_total",
        "todo_fanout_redis_subscribed",
    }


def own_metrics(found: Scrape) -> set[str]:
    return {name.split("_", 1)[0] for name in found.names() if METRIC_NAME.fullmatch(name)}


def test_the_gateway_never_forwards_a_services_metrics(stack: LocalStack) -> None:
    for path in (
        "/auth/metrics",
        "/ws_ep/metrics",
        "/auth/%2e%2e/metrics",
        "/ws_ep/%2E%2E/metrics",
    ):
        response = httpx.get(f"{stack.url}{path}", timeout=5)
        assert response.status_code == 404, (path, response.status_code)
        assert "# TYPE" not in response.text
    # Each service's own port answers with its own metrics only.
    prefixes: dict[str, set[str]] = {
        s.name: own_metrics(scrape(s.url)) for s in (stack.gateway, stack.auth, stack.todo)
    }
    assert prefixes[stack.gateway.name] == {"http", "service", "gateway"}
    assert prefixes[stack.auth.name] == {"http", "service", "auth"}
    assert prefixes[stack.todo.name] == {"http", "service", "todo"}
