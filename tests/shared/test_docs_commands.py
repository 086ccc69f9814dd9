"""Every shell command in README.md and docs/*.md runs as written (tests/docs_commands.txt).

The commands are the lines of the docs' ```sh blocks. Each must be listed in
tests/docs_commands.txt with how it is checked: run to completion, served until it answers
its health path, or skipped with a reason. They run in a scratch copy of the repository
(the project's `.venv` linked in), with free ports in place of the documented ones.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import REPO_ROOT, free_port

LIST_FILE = REPO_ROOT / "tests" / "docs_commands.txt"
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
SH_BLOCK = re.compile(r"^```sh[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
EXPORT = re.compile(r"^export [A-Za-z_][A-Za-z0-9_]*=")
PORT_ARGUMENT = re.compile(r"(--port[ =])(\d+)")
SERVE_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0


@dataclass(frozen=True)
class DocCommand:
    """One command of a doc's ```sh block, with the block's `export` lines before it."""

    doc: str
    command: str
    prelude: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """A line of tests/docs_commands.txt."""

    doc: str
    check: str  # "run", "serve" or "skip"
    argument: str  # the health path for "serve", the reason for "skip"
    command: str


def strip_comment(line: str) -> str:
    """`line` without a trailing `# comment` (a `#` after a blank, outside quotes)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index].rstrip()
    return line.rstrip()


def doc_commands() -> list[DocCommand]:
    """The commands of every ```sh block of README.md and docs/*.md, in order."""
    commands = []
    for path in DOCS:
        doc = str(path.relative_to(REPO_ROOT))
        for block in SH_BLOCK.findall(path.read_text()):
            prelude: list[str] = []
            for line in re.sub(r"\\\n\s*", "", block).splitlines():
                line = strip_comment(line).strip()
                if not line:
                    continue
                if EXPORT.match(line):
                    prelude.append(line)
                else:
                    commands.append(DocCommand(doc, line, tuple(prelude)))
    return commands


def listed_entries() -> list[Entry]:
    entries = []
    for number, raw in enumerate(LIST_FILE.read_text().splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        doc, check, command = (part.strip() for part in raw.split(" | ", 2))
        kind, _, argument = check.partition(" ")
        assert kind in {"run", "serve", "skip"}, f"{LIST_FILE.name}:{number}: unknown {kind!r}"
        assert kind == "run" or argument, f"{LIST_FILE.name}:{number}: {kind} needs an argument"
        entries.append(Entry(doc, kind, argument.strip(), command))
    return entries


def test_shell_blocks_are_marked_sh() -> None:
    """Only ```sh blocks are collected: a ```bash (or shell, console) block would escape."""
    other = re.compile(r"^```(bash|shell|console|zsh|shell-session)\b", re.MULTILINE)
    found = [
        f"{path.relative_to(REPO_ROOT)}: ```{match.group(1)}"
        for path in DOCS
        for match in other.finditer(path.read_text())
    ]
    assert not found, "mark shell commands as ```sh so that they are run:\n" + "\n".join(found)


def test_every_doc_command_is_listed_and_every_entry_is_in_a_doc() -> None:
    documented = {(c.doc, c.command) for c in doc_commands()}
    listed = {(e.doc, e.command) for e in listed_entries()}
    unlisted = [f"  {doc} | run | {command}" for doc, command in sorted(documented - listed)]
    assert not unlisted, (
        f"a doc has shell commands that {LIST_FILE.relative_to(REPO_ROOT)} does not list; add "
        "each with how it is checked (run, serve <path> or skip <reason>):\n" + "\n".join(unlisted)
    )
    stale = [f"  {doc} | {command}" for doc, command in sorted(listed - documented)]
    assert not stale, "listed commands that no doc has any more:\n" + "\n".join(stale)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's files (tracked and new ones), its `.venv` linked in."""
    root = tmp_path_factory.mktemp("docs-commands") / "repo"
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = REPO_ROOT / name
        if source.is_file() and not name.startswith(("data/", ".venv/")):
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (root / ".venv").symlink_to(REPO_ROOT / ".venv")
    return root


def shell_environment() -> dict[str, str]:
    """The test's environment minus what the commands are meant to set themselves."""
    skip = ("JWT_", "AUTH_", "TODO_", "REDIS_", "LOG_", "VIRTUAL_ENV", "PYTEST_")
    return {k: v for k, v in os.environ.items() if not k.startswith(skip)}


def script_for(command: DocCommand, body: str) -> str:
    return "\n".join(["set -e", *command.prelude, body])


def checked_commands(kind: str) -> list[tuple[DocCommand, Entry]]:
    by_command = {(e.doc, e.command): e for e in listed_entries()}
    pairs = []
    for command in doc_commands():
        entry = by_command.get((command.doc, command.command))
        if entry is not None and entry.check == kind:
            pairs.append((command, entry))
    return pairs


def command_id(pair: tuple[DocCommand, Entry]) -> str:
    return f"{pair[0].doc}:{pair[0].command[:60]}"


@pytest.mark.parametrize("pair", checked_commands("run"), ids=command_id)
def test_command_runs(pair: tuple[DocCommand, Entry], scratch: Path) -> None:
    command, _entry = pair
    result = subprocess.run(
        ["bash", "-c", script_for(command, command.command)],
        cwd=scratch,
        env=shell_environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"{command.doc}: `{command.command}` exited {result.returncode}:\n"
        f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )


@pytest.mark.parametrize("pair", checked_commands("serve"), ids=command_id)
def test_server_command_serves(pair: tuple[DocCommand, Entry], scratch: Path) -> None:
    command, entry = pair
    ports: dict[str, int] = {}

    def free(match: re.Match[str]) -> str:
        return match.group(1) + str(ports.setdefault(match.group(2), free_port()))

    body = PORT_ARGUMENT.sub(free, command.command)
    assert len(ports) == 1, f"a served command names its one port: {command.command}"
    base = f"http://127.0.0.1:{next(iter(ports.values()))}"
    log = scratch / f"serve-{next(iter(ports.values()))}.log"
    with log.open("wb") as out:
        # `exec env ...`: the server replaces the shell, so SIGTERM reaches Sanic's main process.
        proc = subprocess.Popen(
            ["bash", "-c", script_for(command, f"exec env {body}")],
            cwd=scratch,
            env=shell_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Alive first (cheap), then the documented path, asked patiently: a busy machine
        # is slow, and a client that gives up early is not what is being tested.
        deadline = time.monotonic() + SERVE_TIMEOUT
        status = None
        for path, timeout in (("/healthz", 2.0), (entry.argument, 15.0)):
            status = None
            while time.monotonic() < deadline and proc.poll() is None and status != 200:
                try:
                    status = httpx.get(base + path, timeout=timeout).status_code
                except httpx.HTTPError:
                    pass
                if status != 200:
                    time.sleep(0.3)
        assert status == 200, (
            f"{command.doc}: `{command.command}` did not answer {entry.argument} with 200 "
            f"(got {status}, exit status {proc.poll()}):\n{log.read_text()[-3000:]}"
        )
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    output = log.read_text()
    assert code == 0 and "Traceback" not in output, output[-3000:]
