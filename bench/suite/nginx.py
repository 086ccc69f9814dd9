"""nginx from Debian as a reference WebSocket proxy: installed if missing, run in the
foreground (`daemon off`) with a generated config in a temporary folder.

One nginx process serves one `server` block per upstream, each on its own free port; it
proxies every path to its upstream and, after the upstream's `101`, copies bytes both ways
(it does not parse WebSocket frames). One worker process, as each Sanic service has.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support import free_port

FD_LIMIT = 19_000  # each proxied socket holds two descriptors; the machine allows 20,000

CONFIG = """\
worker_processes 1;
worker_rlimit_nofile {fd_limit};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections {connections}; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
{servers}
}}
"""

SERVER = """\
    upstream up_{index} {{ server {upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://up_{index};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
"""


def nginx_binary() -> str:
    """The nginx executable; `apt-get install -y nginx` first when it is missing (as root)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx"]):
        done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
        if done.returncode != 0:  # e.g. another apt-get holds the lock
            said = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"could not install nginx: `{' '.join(command)}` said: {said}")
    # Debian's package may start its own daemon (port 80); ours runs on free ports only.
    subprocess.run(["service", "nginx", "stop"], check=False, capture_output=True)
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_version() -> str:
    try:
        done = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    except (OSError, RuntimeError):
        return "not installed"
    return done.stderr.strip().removeprefix("nginx version: ")


class Nginx:
    """nginx proxying one free port to each upstream (`host:port` strings)."""

    name = "nginx"

    def __init__(self, tmp: Path, upstreams: list[str]) -> None:
        self.tmp = tmp / f"nginx-{free_port()}"
        self.upstreams = upstreams
        self.ports = [free_port() for _ in upstreams]
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self) -> Nginx:
        self.tmp.mkdir(parents=True)
        servers = "".join(
            SERVER.format(index=i, upstream=upstream, port=port)
            for i, (upstream, port) in enumerate(zip(self.upstreams, self.ports, strict=True))
        )
        config = self.tmp / "nginx.conf"
        config.write_text(
            CONFIG.format(
                tmp=self.tmp, servers=servers, fd_limit=FD_LIMIT, connections=FD_LIMIT - 100
            )
        )
        log = (self.tmp / "nginx-stderr.log").open("wb")
        self.proc = subprocess.Popen(
            [nginx_binary(), "-c", str(config), "-p", str(self.tmp), "-e", "stderr"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 15
        for index in range(len(self.ports)):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {self.logs()}")
                try:
                    if httpx.get(self.url(index) + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"nginx did not answer: {self.logs()}")
                time.sleep(0.05)
        return self

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def logs(self) -> str:
        text = ""
        for name in ("nginx-stderr.log", "nginx-error.log"):
            path = self.tmp / name
            if path.exists():
                text += path.read_text(errors="replace")[-2000:]
        return text

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # fast shutdown: master and worker
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
