"""The gateway's own metrics: its WebSocket tunnels (its HTTP traffic is in shared/metrics.py).

Only the gateway's own: `/auth/metrics` and `/ws_ep/metrics` are not routes of the
services (theirs is `/metrics` on their own ports), so the gateway never exposes theirs.
With METRICS_ENABLED false every metric is `OFF`. Names: docs/operations.md#metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from shared.metrics import OFF, CounterLike, GaugeLike

TUNNELS_OPENED = Counter(
    "gateway_ws_tunnels_opened_total",
    "WebSocket tunnels set up: the client's socket joined to a socket on a todo replica.",
)
TUNNELS_OPEN = Gauge(
    "gateway_ws_tunnels_open",
    "WebSocket tunnels open now.",
    multiprocess_mode="livesum",
)
TUNNEL_FAILURES = Counter(
    "gateway_ws_tunnel_failures_total",
    "WebSocket upgrades that got no tunnel, by reason: unreachable (no replica answered; "
    "the client's socket is closed 1014), refused (a replica answered with an HTTP error, "
    "passed on to the client).",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class GatewayMetrics:
    """The gateway's metrics, bound to their labels (or `OFF`)."""

    tunnels_opened: CounterLike = OFF
    tunnels_open: GaugeLike = OFF
    tunnel_unreachable: CounterLike = OFF
    tunnel_refused: CounterLike = OFF

    @classmethod
    def build(cls, enabled: bool) -> GatewayMetrics:
        """Bound metrics when `enabled`, else one that records nothing."""
        if not enabled:
            return cls()
        return cls(
            tunnels_opened=TUNNELS_OPENED,
            tunnels_open=TUNNELS_OPEN,
            tunnel_unreachable=TUNNEL_FAILURES.labels("unreachable"),
            tunnel_refused=TUNNEL_FAILURES.labels("refused"),
        )
