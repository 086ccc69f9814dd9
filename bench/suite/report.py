"""docs/benchmarks.md: the machine, a table a scenario, the targets; and the console summary.

The file is written anew on every run. Text between `<!-- notes:begin -->` and
`<!-- notes:end -->` in the previous file (profiles, what was tried) is carried over.
"""

from __future__ import annotations

from pathlib import Path

from bench.suite.machine import Machine
from bench.suite.results import Section, Table, Target

NOTES_BEGIN, NOTES_END = "<!-- notes:begin -->", "<!-- notes:end -->"
DEFAULT_NOTES = (
    "(Free text kept across runs: profiles of missed targets, what was tried. "
    "`bench/run.py` rewrites everything else in this file.)"
)


def _markdown_table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "---|" * len(table.columns))
    for row in table.rows:
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for note in table.notes:
        lines.append(f"{note}")
        lines.append("")
    return lines


def _verdict(target: Target) -> str:
    if target.met is None:
        return "not measured"
    return "met" if target.met else "**missed**"


def target_table(sections: list[Section]) -> list[str]:
    lines = ["| target | wanted | measured | verdict | margin |", "|---|---|---|---|---|"]
    for section in sections:
        for t in section.targets:
            lines.append(f"| {t.name} | {t.wanted} | {t.measured} | {_verdict(t)} | {t.margin} |")
    return lines


def _old_notes(path: Path) -> str:
    try:
        text = path.read_text()
    except OSError:
        return DEFAULT_NOTES
    if NOTES_BEGIN in text and NOTES_END in text:
        return text.split(NOTES_BEGIN, 1)[1].split(NOTES_END, 1)[0].strip() or DEFAULT_NOTES
    return DEFAULT_NOTES


def render(sections: list[Section], machine: Machine, command: str, path: Path) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` (see [bench/README.md](../bench/README.md#the-suite-benchrunpy));"
        " every number below comes from that one run. Compare by ratio within the run:"
        " absolute figures move with the machine's load.",
        "",
        "## Machine",
        "",
        *machine.lines(),
        "",
        "## Targets (issue 11)",
        "",
        *target_table(sections),
        "",
    ]
    if any(s.key == "crud" and s.runs for s in sections):
        lines += ["![throughput and p99 against sockets](benchmarks.png)", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += [section.description.strip(), ""]
        if section.skipped:
            lines += [f"Skipped: {section.skipped}", ""]
            continue
        for table in section.tables:
            lines += _markdown_table(table)
        lines += [f"({section.seconds:.0f} s)", ""]
    lines += ["## Notes", "", NOTES_BEGIN, _old_notes(path), NOTES_END, ""]
    return "\n".join(lines)


def console_summary(sections: list[Section]) -> list[str]:
    lines = ["", "Targets:"]
    for section in sections:
        for t in section.targets:
            mark = {None: "  -  ", True: " met ", False: "MISSED"}[t.met]
            lines.append(f"  [{mark}] {t.name}: {t.measured} (wanted {t.wanted}) {t.margin}")
        if section.skipped:
            lines.append(f"  [skip ] {section.title}: {section.skipped}")
    return lines
