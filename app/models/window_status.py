"""What the main window's status bar says, and where the window goes on the screen.

Plain rules under the window (app/window_jobs.py, app/window_view.py), kept apart from the
widgets so they are tested without Qt: the live run's status line, the sentence for runs that
wait for the store's lock, the recipe change a verdict card asks for, and the arithmetic that
keeps the window inside the screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from cnn_lab.engine.specs import TrainSpec

Rect = tuple[int, int, int, int]
"""``(left, top, width, height)``, as Qt's QRect holds it."""


def step_status(run_id: int, event: Any) -> str:
    """The status line while run ``run_id`` trains, from its latest step event."""
    return (
        f"Run {run_id}: epoch {event.epoch}, step {event.step}, "
        f"loss {event.loss:.4f}, {event.images_per_s:,.0f} images/s"
    )


def finished_status(run_id: int, status: str, reason: str) -> str:
    """The status line (and notification text) when a run ends."""
    return f"Run {run_id} {status}." + (f" {reason}" if reason else "")


@dataclass
class StoreWaits:
    """The runs that cannot save while another program holds the run store's lock, in the
    order they began to wait."""

    run_ids: list[int] = field(default_factory=list)

    def set(self, run_id: int, waiting: bool) -> None:
        if waiting and run_id not in self.run_ids:
            self.run_ids.append(run_id)
        elif not waiting and run_id in self.run_ids:
            self.run_ids.remove(run_id)

    def text(self) -> str:
        """The sentence to show, "" when no run waits."""
        runs = self.run_ids
        if not runs:
            return ""
        names = (
            f"run {runs[0]} waits"
            if len(runs) == 1
            else f"runs {', '.join(map(str, runs[:-1]))} and {runs[-1]} wait"
        )
        return f"The run store is busy (another program is writing to it); {names} to save…"


def recommended_train(train: TrainSpec, changes: dict[str, Any]) -> tuple[TrainSpec | None, str]:
    """The recipe with a verdict card's ``changes``, and the sentence saying so; None and the
    reason when the changes make no valid recipe."""
    fields = ", ".join(f"{k} = {v}" for k, v in changes.items())
    try:
        changed = TrainSpec.model_validate({**train.model_dump(), **changes})
    except ValidationError as exc:
        return None, f"Cannot set {fields}: {exc.errors()[0]['msg']}."
    return changed, f"Set {fields} for the next run (Hyperparameters panel)."


def fit_size(
    wanted: tuple[int, int], min_width: int, area: Rect, frame: tuple[int, int]
) -> tuple[int, int]:
    """The window's size inside the screen's available ``area``.

    ``wanted`` is the size asked for and ``frame`` what the title bar and borders add to it.
    The height never exceeds the area (a 1366 x 768 laptop keeps its status bar); the width
    never goes below ``min_width``, the layout's minimum.
    """
    width = min(wanted[0], area[2] - frame[0])
    height = min(wanted[1], area[3] - frame[1])
    return max(width, min_width), height


def fit_corner(place: Rect, area: Rect) -> tuple[int, int]:
    """Where the frame at ``place`` goes so that it lies inside ``area``: moved as little as
    can be, and pinned to the area's top-left when it is larger than the area."""
    left, top, area_w, area_h = area
    last_left = max(left + area_w - place[2], left)
    last_top = max(top + area_h - place[3], top)
    return min(max(place[0], left), last_left), min(max(place[1], top), last_top)
