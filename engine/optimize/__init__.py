"""One action for "how do I train this fast and well?": speed, rate, search, final run, in a budget.

Headless (no Qt): the CLI's ``cnn-lab optimize`` and the window's Optimize action both call
``optimize`` and read the same frozen ``OptimizeResult``.

The names below load on first use (PEP 562): ``runner`` and ``tuners`` import Optuna and
torch, about a second, and the window reads ``plan`` and ``decisions`` before it appears.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Decision": "decisions",
    "OptimizeResult": "decisions",
    "PhaseTiming": "decisions",
    "Progress": "decisions",
    "Rejected": "decisions",
    "DEFAULT_SHARES": "plan",
    "GOALS": "plan",
    "PHASES": "plan",
    "Plan": "plan",
    "OPTIMIZE_KIND": "decisions",
    "optimize": "runner",
    "stored_result": "runner",
    "Tuners": "tuners",
    "real_tuners": "tuners",
}
"""Each exported name and the module that holds it."""

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
