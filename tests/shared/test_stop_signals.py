"""A stop signal always stops a service's main process cleanly (shared/shutdown.py).

Sanic 25.12's main process handled SIGTERM inside the signal handler, writing worker states
through the multiprocessing connection the interrupted monitor loop might be using: the
two exchanges crossed and the main process died with `AttributeError: 'NoneType' object
has no attribute 'get'` in `WorkerManager._sync_states`, its worker left running. That
happened when the signal landed during one of the loop's state reads (a fraction of a
millisecond every 0.1 s), which these tests force by freezing Sanic's state manager.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import ServiceProcess


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def state_manager_pid(server: ServiceProcess) -> int:
    """Sanic's SyncManager process: the main process's child that is neither the worker
    nor multiprocessing's resource tracker."""
    assert server.proc is not None
    worker = int(re.findall(r"Starting worker \[(\d+)\]", server.logs())[0])
    others = [
        pid
        for pid in child_pids(server.proc.pid)
        if pid != worker and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(others) == 1, others
    return others[0]


def group_members(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True)
    return [line for line in out.stdout.decode().splitlines() if "Z" not in line.split()[-1]]


@pytest.mark.parametrize("sanic_cli", [False, True], ids=["python-m", "sanic-cli"])
def test_sigterm_during_a_worker_state_read_stops_cleanly(sanic_cli: bool, tmp_path: Path) -> None:
    server = ServiceProcess("gateway", {}, tmp_path, sanic_cli=sanic_cli).start()
    assert server.proc is not None
    time.sleep(0.5)  # past start-up: the monitor loop reads worker states every 0.1 s
    manager = state_manager_pid(server)
    os.kill(manager, signal.SIGSTOP)  # the loop's next read now waits for an answer...
    try:
        time.sleep(0.3)
        os.kill(server.proc.pid, signal.SIGTERM)  # ...and the stop signal lands during it
        time.sleep(0.2)
    finally:
        os.kill(manager, signal.SIGCONT)
    try:
        code = server.proc.wait(20)
    finally:
        server.stop(signal.SIGKILL)
    assert code == 0, server.logs()
    assert "Traceback" not in server.logs() and "AttributeError" not in server.logs()
    assert '"Worker complete' in server.logs() or "Stopping worker" in server.logs()
    deadline = time.monotonic() + 5
    while group_members(server.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_members(server.proc.pid), "a process of the service outlived it"


def test_sigterm_as_soon_as_the_service_answers_stops_it(tmp_path: Path) -> None:
    """Before the main process has seen the worker's start-up acknowledgement (polled
    every 0.1 s), Sanic's own handler overwrote it and then waited for it for ever."""
    for _ in range(3):
        server = ServiceProcess("gateway", {}, tmp_path).start(wait=False)
        assert server.proc is not None
        while True:
            assert server.proc.poll() is None, server.logs()
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        os.kill(server.proc.pid, signal.SIGTERM)
        try:
            code = server.proc.wait(20)
        finally:
            server.stop(signal.SIGKILL)
        assert code == 0, server.logs()
