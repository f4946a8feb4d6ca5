"""The scenario registry: every module here with a ``run(options)`` is a scenario named after the module."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from bench.harness import Options

Scenario = Callable[[Options], None]


def _discover() -> dict[str, Scenario]:
    # Scenario modules import their heavy dependencies inside run(), so importing all is cheap.
    found = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if not module_info.name.startswith("_"):
            found[module_info.name] = importlib.import_module(f"{__name__}.{module_info.name}").run
    return found


SCENARIOS: dict[str, Scenario] = _discover()
