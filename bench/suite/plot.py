"""docs/benchmarks.png: throughput and p99 against sockets for the CRUD series."""

from __future__ import annotations

from pathlib import Path

from bench.suite.results import LoadRun

STYLES = {
    "echo": ("tab:gray", "-", "o"),
    "todo": ("tab:blue", "-", "s"),
    "todo via gateway": ("tab:orange", "-", "^"),
    "todo via nginx": ("tab:green", "-", "v"),
    "echo via nginx": ("tab:green", ":", "x"),
    "echo via gateway": ("tab:orange", ":", "x"),
}


def plot(runs: list[LoadRun], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (rate_ax, p99_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    for series, (color, line, marker) in STYLES.items():
        points = sorted((r.sockets, r) for r in runs if r.series == series)
        if not points:
            continue
        xs = [n for n, _ in points]
        kwargs = {"color": color, "linestyle": line, "marker": marker, "label": series}
        rate_ax.plot(xs, [r.rate for _, r in points], **kwargs)
        p99_ax.plot(xs, [r.p99 * 1000 for _, r in points], **kwargs)
    counts = sorted({r.sockets for r in runs})
    for ax in (rate_ax, p99_ax):
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(n) for n in counts])
        ax.set_xlabel("sockets (closed loop, one user each)")
        ax.grid(True, which="both", alpha=0.3)
    rate_ax.set_ylabel("messages a second")
    rate_ax.set_ylim(bottom=0)
    rate_ax.set_title("Throughput")
    p99_ax.set_ylabel("p99 round trip (ms)")
    p99_ax.set_yscale("log")
    p99_ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    p99_ax.set_title("p99 latency")
    p99_ax.axhline(5.0, color="red", linewidth=0.8, linestyle="--", label="5 ms target")
    rate_ax.legend(fontsize=8)
    p99_ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
