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


def test_quick_crud_run_writes_report_and_plot(tmp_path: Path) -> None:
    # scripts/test.sh installs all of these; outside CI a partial setup skips instead.
    missing = [m for m in ("picows", "matplotlib") if importlib.util.find_spec(m) is None]
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if missing:
        reason = f"not installed: {', '.join(missing)} (.[bench] extra; apt-get install nginx)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    done = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--quick",
            "--only",
            "crud",
            "--sockets",
            "1,4",
            "--seconds",
            "0.5",
            "--clients",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = (tmp_path / "benchmarks.md").read_text()
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
