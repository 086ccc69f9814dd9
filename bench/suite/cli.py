"""`bench/run.py`: run the scenarios, print ratios and targets, write the report and plot."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

from bench.suite import plot, report
from bench.suite.machine import Machine
from bench.suite.processes import raise_fd_limit
from bench.suite.profile import FULL, QUICK, Profile
from bench.suite.progress import Display
from bench.suite.results import Section
from bench.suite.scenarios import connect, crud, fanout, logins, metrics, swarm
from bench.suite.scenarios.common import Context
from bench.suite.seed import UserIds
from tests.support import REPO_ROOT

MODULES: list[ModuleType] = [crud, connect, fanout, logins, metrics, swarm]
# --only names: each module's KEY, plus the two halves of the swarm module.
CHOICES = ["crud", "connect", "fanout", "logins", "metrics", "idle", "resume"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="The benchmark suite: reference points (Sanic echo, nginx) and the"
        " services of this tree, one command; writes docs/benchmarks.md and a PNG.",
    )
    parser.add_argument("--quick", action="store_true", help="short runs (about 1-2 min)")
    parser.add_argument(
        "--only",
        type=lambda s: [part.strip() for part in s.split(",") if part.strip()],
        help=f"comma-separated scenarios: {', '.join(CHOICES)}",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "docs", help="folder for the report and plot"
    )
    parser.add_argument("--seconds", type=float, help="measured seconds per run (overrides)")
    parser.add_argument(
        "--sockets",
        type=lambda s: tuple(int(part) for part in s.split(",")),
        help="CRUD sweep socket counts, e.g. 1,16,64",
    )
    parser.add_argument("--swarm", type=int, help="sockets of the idle/resume scenarios")
    parser.add_argument("--clients", type=int, help="load generator processes (64+ sockets)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args(argv)
    for name in args.only or []:
        if name not in CHOICES:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(CHOICES)}")
    return args


def choose_profile(args: argparse.Namespace) -> Profile:
    base = QUICK if args.quick else FULL
    return base.with_overrides(args.seconds, args.sockets, args.swarm, args.clients)


def wanted(module: ModuleType, only: list[str] | None) -> set[str]:
    keys = set(getattr(module, "KEYS", [module.KEY]))
    return keys if only is None else keys & set(only)


async def run_all(args: argparse.Namespace, ctx: Context) -> list[Section]:
    sections: list[Section] = []
    plan = [(m, wanted(m, args.only)) for m in MODULES]
    plan = [(m, keys) for m, keys in plan if keys]
    for module, keys in plan:
        ctx.display.scenario(module.TITLE, module.steps(ctx.profile, keys))
        began = time.monotonic()
        runner: Callable[[Context, set[str]], Awaitable[list[Section]]] = module.run_sections
        try:
            produced = await runner(ctx, keys)
        except Exception as exc:
            ctx.display.log(traceback.format_exc())
            produced = [
                Section(key, module.TITLE, module.__doc__ or "", skipped=f"failed: {exc!r}")
                for key in sorted(keys)
            ]
        for section in produced:
            section.seconds = time.monotonic() - began
            for line in report.console_summary([section])[2:]:
                ctx.display.log(line)
        sections += produced
        ctx.display.scenario_done()
    return sections


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = choose_profile(args)
    raise_fd_limit()
    machine = Machine().collect()
    command = "bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    began = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bench-suite-")
    try:
        display = Display(sum(1 for m in MODULES if wanted(m, args.only)))
        ctx = Context(profile, Path(tmp), display, UserIds())
        with display:
            display.log(f"profile {profile.name}; logs in {tmp}; writing {args.out}")
            sections = asyncio.run(run_all(args, ctx))
    finally:
        if args.keep:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    machine.finish(time.monotonic() - began)
    args.out.mkdir(parents=True, exist_ok=True)
    md_path = args.out / "benchmarks.md"
    crud_runs = [run for s in sections if s.key == "crud" for run in s.runs]
    if crud_runs:
        plot.plot(
            crud_runs,
            args.out / "benchmarks.png",
            f"CRUD cycle, closed loop; {machine.cpu}, {machine.cores} cores; {machine.started};"
            f" commit {machine.commit}",
        )
    md_path.write_text(report.render(sections, machine, command.strip(), md_path))
    for section in sections:
        for table in section.tables:
            if table.title.startswith("Ratios"):
                print(f"\n{table.title}:")
                for row in table.rows:
                    print("  " + row[0].ljust(36) + "".join(cell.rjust(12) for cell in row[1:]))
    for line in report.console_summary(sections):
        print(line)
    print(f"\nwrote {md_path}" + (f" and {args.out / 'benchmarks.png'}" if crud_runs else ""))
    print(f"took {machine.seconds / 60:.1f} min")
    return 0
