"""Durations in words: one family of named styles, so every place that shows a time picks a
style by name instead of writing its own formatter.

Each style answers a different reader:

- ``clock``: ``1:05``, ``1:00:00``, beside a progress bar, where digits should not jump about;
- ``spoken``: ``45 s``, ``1 min 20 s``, ``2 h 05 min``, an ETA read at a glance;
- ``precise``: ``42.0 s``, ``3 min 07 s``, ``2 h 05 min``, a measured duration in a table or
  report, with tenths where a short run's differences show;
- ``rough``: ``30 s``, ``10 min``, ``1.5 h``, an estimate that must not look more exact than it is.

A duration that is not a finite number (no pace measured yet) reads ``unknown``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

DurationStyle = Literal["clock", "spoken", "precise", "rough"]

UNKNOWN = "unknown"


def _clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _spoken(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _precise(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _rough(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


STYLES: dict[str, Callable[[float], str]] = {
    "clock": _clock,
    "spoken": _spoken,
    "precise": _precise,
    "rough": _rough,
}
"""Style name -> formatter of a finite number of seconds."""


def format_duration(seconds: float, style: DurationStyle = "clock") -> str:
    """``seconds`` in the named style; ``unknown`` when it is not a finite number."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return UNKNOWN
    return STYLES[style](float(seconds))
