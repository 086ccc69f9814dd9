"""Prometheus metrics: `GET /metrics` on each service's own port, whatever its worker count.

    install_metrics(app, settings)   the route, the HTTP timing middleware, the multiprocess
                                     directory's life cycle; nothing at all when
                                     METRICS_ENABLED is false
    HTTP_REQUESTS, HTTP_DURATION     every service's HTTP traffic, by route pattern
    OFF                              stands in for a metric when metrics are off

Each service's own metrics live beside it (`auth_service/metrics.py`, ...), pre-bound to
their labels once (`counter.labels(...)` costs a lock and a lookup; a bound child's `inc`
only a write), and are swapped for `OFF` when METRICS_ENABLED is false.

Several workers (Sanic `--workers N`): each worker is its own process with its own
counters. prometheus-client's multiprocess mode keeps every process's values in
memory-mapped files of one directory, and a scrape on any worker reads them all, so each
scrape shows the whole service. The main process makes a fresh directory per start (under
$TMPDIR, named after the service and its pid) and puts it in PROMETHEUS_MULTIPROC_DIR
before the workers are spawned (the client reads the variable when first imported, which
in a spawned worker comes after). A worker that stops removes its live gauges
(`mark_process_dead`); the main process removes the directory when it stops (and, at
start, those of the service's main processes that were killed before they could). Run
without Sanic's main process (`single_process`), the process's own registry is served.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse, HTTPResponse, raw
from sanic_ext import openapi

from shared.settings import ServiceSettings

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
# The route label of a request no route matched (404, 405): never the raw path, which
# anyone could vary to make a new time series per request.
UNMATCHED_ROUTE = "<unmatched>"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STARTED = "metrics_started"

# Seconds: from a millisecond (health checks, cached lists) to a slow argon2 queue.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from routing to the response head (a streamed body is not included).",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
WORKERS = Gauge(
    "service_worker_processes",
    "Worker processes serving (each scrape adds up every live worker's metrics).",
    multiprocess_mode="livesum",
)


class CounterLike(Protocol):
    """A bound counter child, or `OFF`."""

    def inc(self, amount: float = 1) -> None: ...


class GaugeLike(Protocol):
    """A bound gauge, or `OFF`."""

    def inc(self, amount: float = 1) -> None: ...

    def dec(self, amount: float = 1) -> None: ...

    def set(self, value: float) -> None: ...


class HistogramLike(Protocol):
    """A bound histogram child, or `OFF`."""

    def observe(self, amount: float) -> None: ...


class _Off:
    """A metric that records nothing: what services hold when METRICS_ENABLED is false."""

    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def observe(self, amount: float) -> None:
        return None


OFF = _Off()


def exposition(accept: str = "") -> tuple[bytes, str]:
    """Every metric of the service (all workers' together) and its content type.

    The Prometheus text format 0.0.4, or what `accept` asks for (OpenMetrics, text 1.0.0),
    negotiated as the official client's own handlers do.
    """
    encode, content_type = choose_encoder(accept)
    if os.environ.get(MULTIPROC_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return encode(registry), content_type
    return encode(REGISTRY), content_type


def route_label(request: Request) -> str:
    """The route's pattern (`/auth/<path:path>`), not the path that was asked for."""
    template = request.uri_template if request.route is not None else None
    return template or UNMATCHED_ROUTE


def method_label(request: Request) -> str:
    method = request.method
    return method if method in _KNOWN_METHODS else "other"


async def _start_timer(request: Request) -> None:
    setattr(request.ctx, _STARTED, time.perf_counter())


async def _record_request(request: Request, response: BaseHTTPResponse) -> None:
    route, method = route_label(request), method_label(request)
    HTTP_REQUESTS.labels(route, method, str(response.status)).inc()
    # No start time if the request was refused before the request middleware ran.
    started = getattr(request.ctx, _STARTED, None)
    if started is not None:
        HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


def remove_orphaned_directories(parent: Path, prefix: str) -> None:
    """Remove `{prefix}{pid}-*` directories whose main process is gone (killed with
    SIGKILL, it could not remove its own)."""
    for path in parent.glob(f"{prefix}*"):
        pid = path.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and not _is_running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def install_metrics(app: Sanic, settings: ServiceSettings) -> None:
    """Serve `GET /metrics` and time every HTTP request, unless METRICS_ENABLED is false."""
    if not settings.metrics_enabled:
        return
    directory: str | None = None

    @app.main_process_start
    async def fresh_metrics_directory(app: Sanic) -> None:
        # Never a directory of an earlier run: its counters would add to this one's.
        nonlocal directory
        prefix = f"{app.name}-metrics-"
        remove_orphaned_directories(Path(tempfile.gettempdir()), prefix)
        directory = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")
        os.environ[MULTIPROC_DIR_ENV] = directory

    @app.main_process_stop
    async def remove_metrics_directory(app: Sanic) -> None:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    @app.before_server_start
    async def count_worker(app: Sanic) -> None:
        WORKERS.set(1)

    @app.after_server_stop
    async def forget_worker(app: Sanic) -> None:
        # Its counters stay (they are totals); its live gauges (open sockets...) go.
        if os.environ.get(MULTIPROC_DIR_ENV):
            multiprocess.mark_process_dead(os.getpid())

    # First in, last out: the timer starts before other middleware and stops after.
    app.register_middleware(_start_timer, "request", priority=1000)
    app.register_middleware(_record_request, "response", priority=-1000)

    @app.get(METRICS_PATH, name="prometheus_metrics")
    @openapi.exclude()  # an operator's endpoint on the service's own port, not the API
    async def metrics(request: Request) -> HTTPResponse:
        body, content_type = exposition(request.headers.get("accept", ""))
        return raw(body, content_type=content_type)
