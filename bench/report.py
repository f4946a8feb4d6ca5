"""Reporting for the scenarios: machine facts, tables, and each scenario's section of docs/benchmarks.md."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
from pathlib import Path

from tabulate import tabulate

DOC_TITLE = """# Benchmarks

Figures written by `make bench` (`python -m bench [NAME...]`), one section per scenario; a
run replaces only the sections of the scenarios it ran. They describe the machine they were
taken on, listed in each section: compare ratios across machines, not absolute rates.
"""


def machine_info() -> dict[str, str]:
    """Facts that figures depend on: CPU, load, and the versions of everything measured."""
    info = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": f"{os.cpu_count()} cores, {_cpu_model()}",
        "load average at start": ", ".join(f"{load:.2f}" for load in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    for package in ("Django", "dramatiq", "django-dramatiq", "celery", "kombu", "redis"):
        info[package if package != "redis" else "redis-py"] = _version(package)
    return info


def machine_section(**extra: str) -> str:
    """The "Machine:" part of a scenario's section: ``machine_info`` and any facts of its own."""
    return "Machine:\n\n" + "\n".join(f"- {key}: {value}" for key, value in {**machine_info(), **extra}.items())


def database_label() -> str:
    """Which database a scenario ran on, for its method text."""
    return "PostgreSQL, a scratch database" if os.environ.get("DATABASE_URL") else "SQLite in a temporary VAR_DIR"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown CPU"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def table(headers: list[str], rows: list[list], *, markdown: bool = False) -> str:
    return tabulate(rows, headers=headers, tablefmt="github" if markdown else "simple", disable_numparse=True)


def write_section(doc: Path, name: str, body: str) -> None:
    """Put ``body`` between this scenario's markers in ``doc``, keeping every other section as it was."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    section = f"{start}\n{body.strip()}\n{end}"
    text = doc.read_text() if doc.exists() else DOC_TITLE
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def publish_comparison(
    options,
    name: str,
    title: str,
    results: tuple[list[str], list[list]],
    targets: tuple[list[str], list[list]],
    *,
    method: str,
    extra: tuple[str, ...] = (),
    machine: dict[str, str] | None = None,
) -> None:
    """Print a scenario's results and targets, and save them with how they were measured in ``options.doc``."""
    print("\n" + table(*results) + "\n\n" + table(*targets), flush=True)
    if options.doc is None:
        return
    body = "\n\n".join(
        [
            f"## {name}: {title}",
            table(*results, markdown=True),
            table(*targets, markdown=True),
            "How it is measured:\n\n" + method,
            *extra,
            machine_section(**(machine or {})),
        ]
    )
    write_section(options.doc, name, body)
    print(f"\nsaved to {options.doc}", flush=True)
