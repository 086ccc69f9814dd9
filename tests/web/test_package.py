"""The client as a package a frontend installs: its declarations pass `tsc --strict` over a
usage file, and `npm pack` makes a tarball that `npm install` puts in a fresh project,
where it imports (Node) and type-checks (TypeScript) by its package name.

TypeScript comes from npm (`npm ci --prefix tests/web/ts`, run by scripts/test.sh). Without
node, npm or that install these tests skip, except in CI where they fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import IN_CI

TS_DIR = Path(__file__).parent / "ts"
TSC = TS_DIR / "node_modules" / "typescript" / "bin" / "tsc"
CLIENT_DIR = Path(__file__).resolve().parents[2] / "gateway" / "static"
PACKAGE = json.loads((CLIENT_DIR / "package.json").read_text())


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed")
    return str(found)


def missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def run(command: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def tsc(*args: str) -> str:
    node = tool("node")
    if not TSC.is_file():
        missing("TypeScript is not installed: run `npm ci --prefix tests/web/ts`")
    return run([node, str(TSC), *args])


def test_declarations_pass_tsc_strict_over_the_usage_file() -> None:
    tsc("-p", str(TS_DIR), "--strict", "--noEmit")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm = tool("npm")
    out = tmp_path_factory.mktemp("pack")
    report = json.loads(
        run([npm, "pack", str(CLIENT_DIR), "--json", "--pack-destination", str(out)])
    )
    [packed] = report
    assert {f["path"] for f in packed["files"]} == {
        "package.json",
        "todo-client.js",
        "todo-client.d.ts",
    }  # the library only: not the page
    return out / packed["filename"]


APP_TS = """
import { AuthApi, TodoApiError, TodoClient, type Todo, type TodoItem } from "todo-realtime-client";

const client = new TodoClient({ auth: new AuthApi({ baseUrl: "https://todo.example" }) });
client.addEventListener("change", (event) => {
  const items: TodoItem[] = event.detail.todos;
  console.log(items.filter((t) => t.pending !== null).length);
});
export async function add(title: string): Promise<number> {
  try {
    const todo: Todo = await client.createTodo({ title });
    return todo.version;
  } catch (error) {
    if (error instanceof TodoApiError && error.code === "validation_error") return 0;
    throw error;
  }
}
"""


def test_the_packed_tarball_installs_imports_and_type_checks(tarball: Path, tmp_path: Path) -> None:
    npm, node = tool("npm"), tool("node")
    app = tmp_path / "app"
    app.mkdir()
    manifest = {"name": "app", "private": True, "type": "module"}
    (app / "package.json").write_text(json.dumps(manifest))
    # No dependencies: nothing comes from the registry.
    run([npm, "install", "--offline", "--no-audit", "--no-fund", str(tarball)], cwd=app)
    installed = json.loads((app / "node_modules" / PACKAGE["name"] / "package.json").read_text())
    assert installed["version"] == PACKAGE["version"]

    # Node 20 imports it by name (no DOM needed until a socket is opened).
    script = f"""
        const lib = await import("{PACKAGE["name"]}");
        const client = new lib.TodoClient({{ storage: null }});
        console.log(JSON.stringify({{ exports: Object.keys(lib).sort(), state: client.state }}));
        client.dispose();
    """
    loaded = json.loads(run([node, "--input-type=module", "-e", script], cwd=app))
    assert loaded["state"] == "offline"
    assert {"TodoClient", "AuthApi", "TodoApiError", "ConnectionState"} <= set(loaded["exports"])

    # TypeScript finds the declarations through `exports`/`types`, as bundlers and Node do.
    (app / "app.ts").write_text(APP_TS)
    for resolution in (
        ["--module", "NodeNext", "--moduleResolution", "NodeNext"],
        ["--module", "ESNext", "--moduleResolution", "Bundler"],
    ):
        tsc(
            "--strict",
            "--noEmit",
            "--target",
            "ES2022",
            "--lib",
            "ES2022,DOM",
            *resolution,
            str(app / "app.ts"),
        )
