"""The auth REST API fuzzed from its own OpenAPI document with schemathesis (issue 12).

A real auth service on each database backend; schemathesis reads `/auth/openapi.json` from
it, signs up and logs in by itself, then sends valid and invalid requests to every call:
no answer may be a 5xx, and every status, content type, header and body must be what the
document says. Run alone, with more examples, to dig deeper:

    AUTH_FUZZ_EXAMPLES=1000 .venv/bin/python -m pytest tests/auth/test_fuzz_openapi.py

A failure prints schemathesis's report: each case with a `curl` line that reproduces it,
and the seed. (Its pytest plugin, `from_fixture`, does not work with pytest 9, so the suite
runs schemathesis's own command line.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServiceProcess

# Per call and per phase; about 15 s a backend on 2 busy cores.
MAX_EXAMPLES = int(os.environ.get("AUTH_FUZZ_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def fuzzed_service(
    auth_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    env = {
        **auth_env,
        # The fuzzer signs up and fails logins by the hundred from one address: the
        # per-address limits would soon answer every call with 429 and hide the rest.
        "REGISTER_MAX_PER_ADDRESS": "0",
        "LOGIN_MAX_PER_ADDRESS": "0",
        "LOG_LEVEL": "INFO",
    }
    with ServiceProcess("auth_service", env, tmp_path_factory.mktemp("fuzz")) as server:
        yield server


def test_every_answer_matches_the_document(fuzzed_service: ServiceProcess, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{fuzzed_service.url}/auth/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "2",
        "--request-timeout",
        "10",
    ]
    # Its working files (.hypothesis/, .schemathesis/) go into the test's own folder.
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout[-12_000:] + result.stderr[-3_000:]
    assert result.returncode == 0, report
    assert "No issues found" in result.stdout, report
    # Nothing went wrong inside either, even where the answer looked right.
    log = fuzzed_service.log_path.read_text(errors="replace")
    assert '"level":"ERROR"' not in log, log[-5_000:]
