"""Smoke test of the benchmark suite (bench/run.py): the CRUD sweep, tiny, into a temp folder.

It starts the real reference servers and services (echo, todo, two gateways, nginx) and
checks that the report and the plot come out with numbers in them. Not a benchmark: the
runs are half a second long.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import IN_CI, REPO_ROOT


def require_the_suites_tools() -> None:
    """scripts/test.sh installs all of these; outside CI a partial setup skips instead."""
    missing = [m for m in ("picows", "matplotlib") if importlib.util.find_spec(m) is None]
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if missing:
        reason = f"not installed: {', '.join(missing)} (.[bench] extra; apt-get install nginx)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


def run_suite(out: Path, *args: str, timeout: float) -> str:
    """bench/run.py --quick with `args`, writing into `out`; the report it wrote."""
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", *args, "--clients", "1", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return (out / "benchmarks.md").read_text()


def test_quick_crud_run_writes_report_and_plot(tmp_path: Path) -> None:
    require_the_suites_tools()
    report = run_suite(
        tmp_path, "--only", "crud", "--sockets", "1,4", "--seconds", "0.5", timeout=100
    )
    assert "## Targets" in report
    assert "AMD" in report or "Intel" in report or "CPU:" in report
    # Every series of the sweep has a throughput figure, and it is not zero.
    for series in ("echo", "todo", "todo via gateway", "todo via nginx", "echo via nginx"):
        row = re.search(rf"^\| {re.escape(series)} \| ([\d,]+) \| ([\d,]+) \|$", report, re.M)
        assert row, f"no throughput row for {series}"
        assert int(row.group(1).replace(",", "")) > 0
    assert re.search(r"todo CRUD vs echo .*\| \d+% \|", report)

    plot = (tmp_path / "benchmarks.png").read_bytes()
    assert plot.startswith(b"\x89PNG\r\n\x1a\n") and len(plot) > 10_000


def test_quick_connect_and_metrics_runs_report_floors_and_a_profile(tmp_path: Path) -> None:
    """The connect scenario's echo reference rows, and the metrics scenario's profile (py-spy
    attached to the running worker), come out with numbers in them."""
    require_the_suites_tools()
    report = run_suite(tmp_path, "--only", "connect,metrics", "--seconds", "1.5", timeout=150)
    for path in ("echo", "echo via nginx", "echo via gateway", "todo", "todo via gateway"):
        row = re.search(rf"^\| {re.escape(path)} \| ([\d,]+) \| .* \| (\d+) \|$", report, re.M)
        assert row, f"no connect row for {path}"
        assert int(row.group(1).replace(",", "")) > 0 and row.group(2) == "0", row.group(0)
    profiled = re.search(r"^\| [\d,]+ \| \d+ \| ([\d,]+) \| ([\d.]+)% \| [\d.]+ \|$", report, re.M)
    assert profiled, "no profile row in the metrics section"
    assert int(profiled.group(1).replace(",", "")) >= 100, "py-spy took too few samples"
    assert re.search(r"metrics cost on todo CRUD \(share of samples\) \| < 5 % \| [\d.]+ %", report)
