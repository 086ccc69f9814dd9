"""Real servers for the tests: service processes on free ports, fresh databases.

Nothing here mocks anything: `ServiceProcess` runs `python -m <service>` exactly as an
operator would, with the environment a test gives it, and waits for `/healthz`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ACK_SETTLE_SECONDS = 0.3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_jwt_secret() -> str:
    return secrets.token_urlsafe(48)


class ServiceProcess:
    """One service started as `python -m module --host 127.0.0.1 --port P`."""

    def __init__(
        self,
        module: str,
        env: Mapping[str, str],
        log_dir: Path,
        port: int | None = None,
        name: str | None = None,
        sanic_cli: bool = False,
    ) -> None:
        self.module = module
        self.sanic_cli = sanic_cli
        self.env = dict(env)
        self.port = port or free_port()
        self.port_chosen_here = port is None  # may move if another process takes it first
        self.name = name or module
        self.log_path = log_dir / f"{self.name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.healthy_at = 0.0
        self.extra_args: list[str] = []  # e.g. ["--workers", "2"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 30.0) -> ServiceProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        log = self.log_path.open("ab")
        if self.sanic_cli:  # the Sanic CLI with the app factory, as an operator may run it
            launcher = ["-m", "sanic", f"{self.module}.app:create_app", "--factory"]
        else:
            launcher = ["-m", self.module]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *launcher,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *self.extra_args,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0, path: str = "/healthz") -> None:
        deadline = time.monotonic() + timeout
        moves = 0
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                port_taken = "Address already in use" in self.logs()
                if self.port_chosen_here and port_taken and moves < 3:
                    moves += 1
                    # free_port() gives an ephemeral port, which any outgoing connection
                    # on the machine may take before the service binds it: pick another.
                    self.port = free_port()
                    self.start(wait=False)
                    continue
                raise RuntimeError(f"{self.name} exited early:\n{self.logs()}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    self.healthy_at = time.monotonic()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not healthy after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Send `sig` as a process manager would, wait, SIGKILL the group if it lingers.

        SIGKILL goes to the whole process group (workers die with the main process);
        other signals go to Sanic's main process only, which relays them to its workers.
        Signalling the group would also hit the multiprocessing manager Sanic keeps its
        worker states in, and the main process would then fail on a broken pipe.
        """
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        if sig == signal.SIGKILL:
            os.killpg(self.proc.pid, sig)
            return self.proc.wait(5)
        # Sanic 25.12's main process loops forever on a stop signal that arrives while it
        # still waits for its worker's start-up acknowledgement (polled every 0.1 s, just
        # after the worker starts answering): give that a moment on very short lives.
        settle = self.healthy_at + ACK_SETTLE_SECONDS - time.monotonic()
        if settle > 0:
            time.sleep(settle)
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self, timeout: float = 30.0) -> ServiceProcess:
        self.stop()
        return self.start(timeout=timeout)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fanout_env(db_url: str, redis_url: str = REDIS_URL) -> dict[str, str]:
    """Todo-service settings for PostgreSQL + Redis fan-out, on channels of the test's own
    (other tests share the machine's Redis, and user ids of two test databases collide)."""
    return {
        "TODO_DB_URL": db_url,
        "REDIS_URL": redis_url,
        "REDIS_CHANNEL_PREFIX": f"test-{secrets.token_hex(4)}",
    }


def _admin_dsn_for(database: str) -> str:
    return f"{POSTGRES_ADMIN_DSN}/{database}"


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    """Fail in CI, skip elsewhere, when the PostgreSQL a test needs is not running."""
    import pytest

    if not postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not running")


def create_postgres_database(prefix: str) -> str:
    """Create an empty database with a unique name; return its Tortoise URL."""
    import asyncio

    import asyncpg

    name = f"{prefix}_{secrets.token_hex(6)}"

    async def create() -> None:
        conn = await asyncpg.connect(_admin_dsn_for("postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return _admin_dsn_for(name)


def drop_postgres_database(url: str) -> None:
    import asyncio

    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(_admin_dsn_for("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


class RedisServer:
    """A redis-server of the test's own on a free port, to stop and start at will."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.port_chosen_here = port is None  # may move if another process takes it first
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(self.log_path),
        ]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class PostgresServer:
    """A PostgreSQL cluster of the test's own (initdb in a temp dir, a free port), to stop
    and start at will without touching the machine's shared server.

    The server refuses to run as root: as root, its commands run as the `postgres` user.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.port_chosen_here = port is None  # may move if another process takes it first
        self.data_dir = Path(tempfile.mkdtemp(prefix="test-pg-")) / "data"
        self.log_path = self.data_dir.parent / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def binaries() -> Path | None:
        """The newest installed server's bin folder (Debian layout), if any."""
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=_version_key)
        return found[-1].parent if found else None

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        bin_dir = self.binaries()
        assert bin_dir is not None, "no PostgreSQL server binaries"
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*as_postgres, str(bin_dir / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )

    def init(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.data_dir.parent, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-N")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                # Durability against a crash of the server process needs no fsync (the
                # kernel keeps what was written); an fsync per commit would only slow tests.
                "fsync = off\n"
            )
        return self

    def start(self) -> PostgresServer:
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`mode`: `fast` (clean) or `immediate` (as a crash: recovery on the next start)."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def _version_key(pg_ctl: Path) -> tuple[int, ...]:
    version = pg_ctl.parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def require_postgres_binaries() -> None:
    """Fail in CI, skip elsewhere, when no PostgreSQL server binaries are installed."""
    import pytest

    if PostgresServer.binaries() is None:
        if IN_CI:
            pytest.fail("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are required")
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
