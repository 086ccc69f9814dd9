"""The README's first command, run as a new user would: on a fresh clone, from nothing.

This clones the committed repository, runs `bash scripts/dev.sh` (which makes its own
virtualenv and installs the project), and uses the stack at http://localhost:8000 the
way the web page does. Then Ctrl-C (SIGINT to the process group) must stop everything,
and a second start must accept the tokens the first one issued, without reinstalling
(pyproject.toml has not changed). The stack's logs are readable text lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support import REPO_ROOT

STACK_PORTS = (8000, 8001, 8002)
BASE = "http://localhost:8000"


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_stack(clone: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "VIRTUAL_ENV"))}
    with log.open("ab") as out:
        return subprocess.Popen(
            ["bash", "scripts/dev.sh"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dev stack exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{BASE}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"dev stack not ready after {timeout}s:\n{log.read_text()[-4000:]}")


def ctrl_c(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the stack did not stop within 20 s of Ctrl-C")


async def first_messages(token: str, title: str) -> list[dict[str, object]]:
    async with connect(f"ws://localhost:8000/ws_ep/ws?token={token}", open_timeout=10) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send(json.dumps({"action": "create_todo", "payload": {"title": title}}))
        second = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return [first, second]


@pytest.mark.timeout(600)  # a fresh install (up to 300 s on a busy machine) and two starts
async def test_readme_first_command_on_a_fresh_clone(tmp_path: Path) -> None:
    busy = [p for p in STACK_PORTS if port_in_use(p)]
    assert not busy, f"ports {busy} are taken: stop whatever runs there (a dev stack?)"

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, timeout=60)
    log = tmp_path / "stack.log"
    proc = start_stack(clone, log)
    try:
        wait_ready(proc, log, timeout=300)  # the first run installs everything
        page = httpx.get(f"{BASE}/", timeout=5)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]

        user = {"username": f"u{uuid.uuid4().hex[:10]}", "password": "correct horse battery"}
        assert httpx.post(f"{BASE}/auth/register", json=user, timeout=10).status_code == 201
        login = httpx.post(f"{BASE}/auth/login", data=user, timeout=10)
        assert login.status_code == 200
        token = login.json()["access_token"]
        listed, created = await first_messages(token, "from the README")
        assert listed == {"type": "todos_list", "data": [], "rev": 0}
        assert created["type"] == "todo_created"
        assert created["data"]["title"] == "from the README"  # type: ignore[index]
    finally:
        code = ctrl_c(proc)
    assert code in (0, 130), log.read_text()[-3000:]
    assert not [p for p in STACK_PORTS if port_in_use(p)], "a service outlived Ctrl-C"

    output = log.read_text()
    assert "installing the project into .venv" in output
    assert '| {"' not in output, "the dev stack logs JSON; it should write text lines"
    assert re.search(r"gateway\s+\| \d\d:\d\d:\d\d INFO  access  GET ", output), output[-2000:]
    for prefix in ("auth", "todo", "gateway"):
        assert any(
            line.split("|")[0].strip().endswith(prefix)
            for line in output.splitlines()
            if "|" in line
        ), f"no log line prefixed by {prefix}"
    assert token not in output and user["password"] not in output

    secret = clone / "data" / "jwt_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600

    first_run = len(output)
    started = time.monotonic()
    proc = start_stack(clone, log)  # the second start keeps the secret and the data
    try:
        wait_ready(proc, log, timeout=60)
        restart_seconds = time.monotonic() - started
        second = log.read_text()[first_run:]
        assert "project already installed in .venv (pyproject.toml unchanged)" in second
        assert "installing the project" not in second
        print(f"dev.sh second start: ready in {restart_seconds:.1f} s (no reinstall)")
        listed, _ = await first_messages(token, "after restart")
        assert [t["title"] for t in listed["data"]] == ["from the README"]  # type: ignore[union-attr,index]
    finally:
        ctrl_c(proc)
