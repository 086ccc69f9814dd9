"""What the scenarios produce: tables, load runs (for the plot) and target checks."""

from __future__ import annotations

from dataclasses import dataclass, field


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (nearest rank) of `values`; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


@dataclass
class LoadRun:
    """One closed-loop run of the CRUD cycle: `series` at `sockets` sockets."""

    series: str
    sockets: int
    messages: int
    seconds: float
    p50: float  # seconds
    p99: float
    errors: int
    server_cpu: float  # CPU seconds of every server on the path (proxy + backend)
    client_cpu: float  # CPU seconds of the load generator processes

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def server_us_per_message(self) -> float:
        return self.server_cpu / self.messages * 1e6 if self.messages else 0.0

    @property
    def client_us_per_message(self) -> float:
        return self.client_cpu / self.messages * 1e6 if self.messages else 0.0

    @property
    def client_share(self) -> float:
        """The load generator's CPU as a share of one core."""
        return self.client_cpu / self.seconds if self.seconds else 0.0


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Target:
    """One of issue 11's targets, judged on this run."""

    name: str
    wanted: str
    measured: str
    met: bool | None  # None: not measured (skipped or failed)
    margin: str = ""


def at_least(name: str, value: float, wanted: float, unit: str = "%") -> Target:
    """`value` must reach `wanted`; shares (unit %) are given as fractions."""
    if unit == "%":
        measured, goal = f"{value:.0%}", f">= {wanted:.0%}"
        gap = f"{(value - wanted) * 100:+.0f} points"
    else:
        measured, goal = f"{value:.2f}{unit}", f">= {wanted:g}{unit}"
        gap = f"{value / wanted:.0%} of the target" if wanted else ""
    return Target(name, goal, measured, value >= wanted, gap)


def at_most(name: str, value: float, wanted: float, unit: str) -> Target:
    verdict = value <= wanted
    if verdict:
        margin = f"{wanted - value:.2f} {unit} to spare"
    else:
        times = f", {value / wanted:.1f}x the limit" if wanted > 0 else ""
        margin = f"{value - wanted:.2f} {unit} over{times}"
    return Target(name, f"< {wanted:g} {unit}", f"{value:.2f} {unit}", verdict, margin)


def not_measured(name: str, wanted: str, why: str) -> Target:
    return Target(name, wanted, "not measured", None, why)


@dataclass
class Section:
    """One scenario's part of the report."""

    key: str
    title: str
    description: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    runs: list[LoadRun] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0
