"""One action for "how do I train this fast and well?": speed, rate, search, final run, in a budget.

Headless (no Qt): the CLI's ``cnn-lab optimize`` and the window's Optimize action both call
``optimize`` and read the same frozen ``OptimizeResult``.
"""

from cnn_lab.engine.optimize.decisions import (
    Decision,
    OptimizeResult,
    PhaseTiming,
    Progress,
    Rejected,
)
from cnn_lab.engine.optimize.plan import DEFAULT_SHARES, GOALS, PHASES, Plan
from cnn_lab.engine.optimize.runner import OPTIMIZE_KIND, optimize, stored_result
from cnn_lab.engine.optimize.tuners import Tuners, real_tuners

__all__ = [
    "DEFAULT_SHARES",
    "GOALS",
    "OPTIMIZE_KIND",
    "PHASES",
    "Decision",
    "OptimizeResult",
    "PhaseTiming",
    "Plan",
    "Progress",
    "Rejected",
    "Tuners",
    "optimize",
    "real_tuners",
    "stored_result",
]
