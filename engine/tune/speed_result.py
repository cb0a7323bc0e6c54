"""What the speed advisor answers: your settings, the fastest found, and every measurement.

Plain frozen records with ``to_dict()`` (JSON-safe: no NaN or infinity, None instead) for
``cnn-lab tune speed --json`` and the Tune panel, and ``summary_lines()`` for a terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Settings = dict[str, Any]
"""TrainSpec field -> value."""
COMBINATION = "combination"
"""The ``option`` of an exhaustive search's findings, whose ``value`` is a whole combination."""


@dataclass(frozen=True)
class Finding:
    """One measured value of one option (or, for ``exhaustive``, one whole combination)."""

    option: str
    value: Any
    images_per_s: float | None
    speedup: float | None
    """Against your settings' first measurement."""
    accepted: bool
    note: str
    first_step_s: float | None = None
    """The first step alone: mostly compilation when compile is on."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "value": self.value,
            "images_per_s": json_float(self.images_per_s),
            "speedup": json_float(self.speedup),
            "accepted": self.accepted,
            "note": self.note,
            "first_step_s": json_float(self.first_step_s),
        }


@dataclass(frozen=True)
class SpeedAdvice:
    """The advisor's answer: your settings, the fastest found, and every measurement."""

    device: str
    baseline_settings: Settings
    baseline_images_per_s: float | None
    best_settings: Settings
    best_images_per_s: float | None
    changes: Settings
    """Only the TrainSpec fields that differ from your spec: ``train.model_copy(update=...)``."""
    findings: tuple[Finding, ...]
    warnings: tuple[str, ...]
    probe_seconds: float
    probes: int
    message: str

    @property
    def speedup(self) -> float | None:
        if not self.baseline_images_per_s or self.best_images_per_s is None:
            return None
        return self.best_images_per_s / self.baseline_images_per_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "baseline": {
                "settings": dict(self.baseline_settings),
                "images_per_s": json_float(self.baseline_images_per_s),
            },
            "best": {
                "settings": dict(self.best_settings),
                "images_per_s": json_float(self.best_images_per_s),
            },
            "speedup": json_float(self.speedup),
            "changes": dict(self.changes),
            "findings": [finding.to_dict() for finding in self.findings],
            "warnings": list(self.warnings),
            "probe_seconds": round(self.probe_seconds, 3),
            "probes": self.probes,
            "message": self.message,
        }

    def summary_lines(self) -> list[str]:
        lines = [
            f"Speed advice on {self.device} ({self.probes} probes, {self.probe_seconds:.1f} s)"
        ]
        lines.append(f"  {'your settings':<30} {rate_text(self.baseline_images_per_s)}")
        for f in self.findings:
            mark = "kept" if f.accepted else "    "
            ratio = f"x{f.speedup:.2f}" if f.speedup is not None else "  -  "
            label = show(f.value) if f.option == COMBINATION else f"{f.option}={show(f.value)}"
            lines.append(f"  {label:<30} {rate_text(f.images_per_s)}  {ratio}  {mark}")
        if self.changes:
            lines.append("Apply: " + describe(self.changes))
        lines += [f"Warning: {w}" for w in self.warnings]
        lines.append(self.message)
        return lines


def describe(settings: Settings) -> str:
    """``field=value, ...`` for a sentence."""
    return ", ".join(f"{k}={show(v)}" for k, v in settings.items())


def rate_text(value: float | None) -> str:
    return f"{value:8.0f} images/s" if value is not None else "       - images/s"


def show(value: Any) -> str:
    if isinstance(value, dict):
        return describe(value) or "yours"
    return str(value)


def json_float(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 4)
