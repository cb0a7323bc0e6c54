"""The Tune panel: the LR range test, the batch-size finder and the speed advisor.

Each tuner measures the person's own model, data and device (``AppState.run_spec()``) in a
child process, through one runner (app/bridge/tune_runner.py): one tuner at a time, since
two would share the device and each would time the other's load. A section is a view
(app/widgets/*_section.py); this panel routes the runner's signals to the section whose
tuner runs, and turns a section's "Use"/"Apply" into a validated ``state.train``, which the
Hyperparameters panel then shows.

``runner_factory`` lets tests give the panel a runner that answers with canned results.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from pydantic_core import ValidationError  # not pydantic's: see data_panel.py
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QScrollArea, QVBoxLayout, QWidget

from cnn_lab.app.bridge.tune_runner import TuneRunner
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.batch_size_section import BatchSizeSection
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.lr_curve_chart import format_rate
from cnn_lab.app.widgets.lr_section import LRSection
from cnn_lab.app.widgets.speed_section import SpeedSection, format_changes
from cnn_lab.app.widgets.tuner_section import TunerSection, note_label
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import TrainSpec, explain

RunnerFactory = Callable[[QObject], Any]
"""Makes the runner: a QObject with ``progress(str, int, int)``, ``finished(dict)``,
``failed(str)`` and ``cancelled()`` signals and ``start(kind, spec, options)``, ``stop()``
and ``shutdown()`` methods, as TuneRunner has."""

INTRO = (
    "Measure what to set on your own model, data and device. The tuners use the current "
    "Data, Architecture and Hyperparameters; nothing changes until you press Use or Apply."
)
EMPTY_TITLE = "No tuner has run yet"
EMPTY_TEXT = (
    "Each tuner measures the current Data, Architecture and Hyperparameters on this device "
    "in a few training steps of a throw-away copy. The LR range test (seconds to a minute) "
    "finds a learning rate; the batch-size finder (seconds on a GPU, about instant on the "
    "CPU) finds the largest batch that fits in memory; the speed advisor (seconds per option, "
    "minutes with torch.compile) finds the fastest speed settings. The first run of a "
    "dataset also decodes its images once. Nothing changes until you press Use or Apply."
)
EMPTY_TEXT_WIDTH = 900
"""Wider than other panels' empty states: it sits above the tuners, so its height costs them."""


def _applied(changes: dict[str, Any]) -> str:
    """The sentence that confirms a change went into the recipe."""
    if set(changes) == {"lr"}:
        return f"Learning rate set to {format_rate(changes['lr'])} in the Hyperparameters."
    if set(changes) == {"batch_size"}:
        return f"Batch size set to {changes['batch_size']} in the Hyperparameters."
    return f"Applied {format_changes(changes)} to the Hyperparameters."


class _FitToViewport(QVBoxLayout):
    """A column that a scroll area fits to its viewport rather than to its preferred height.

    With word-wrapped labels inside, a layout reports height-for-width, and QScrollArea
    then makes the content as tall as it would like to be (the chart's and table's
    generous size hints), so the panel scrolled even in a window with room to spare.
    """

    def hasHeightForWidth(self) -> bool:
        return False


class TunePanel(QWidget):
    """Three tuner sections over one runner; results go into ``state.train`` on request."""

    title = "Tune"
    tuner_started = Signal(str)  # kind
    tuner_ended = Signal(str, str)  # kind, "finished" | "failed" | "cancelled"

    def __init__(
        self,
        state: AppState,
        parent: QWidget | None = None,
        *,
        runner_factory: RunnerFactory | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.lr_section = LRSection()
        self.batch_section = BatchSizeSection()
        self.speed_section = SpeedSection()
        self.sections: dict[str, TunerSection] = {
            section.kind: section  # type: ignore[attr-defined]
            for section in (self.lr_section, self.batch_section, self.speed_section)
        }
        self._active: str | None = None  # the kind whose tuner runs
        for kind, section in self.sections.items():
            section.run_requested.connect(lambda options, kind=kind: self.run(kind, options))
            section.stop_requested.connect(self.stop)
            section.apply_requested.connect(lambda changes, kind=kind: self.apply(kind, changes))

        self.runner = (runner_factory or TuneRunner)(self)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self._build_layout()

    def _build_layout(self) -> None:
        # Two columns, so the three fit the window's panel area (about 1280 × 520) without
        # scrolling: the chart, which is read and clicked, gets a whole column; the batch
        # result is a few lines above the advisor's table.
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.batch_section)
        right.addWidget(self.speed_section, 1)
        columns = QHBoxLayout()
        columns.setContentsMargins(0, 0, 0, 0)
        columns.addWidget(self.lr_section, 1)
        columns.addLayout(right, 1)
        self.intro = note_label(INTRO)
        self.empty_state = EmptyState(
            EMPTY_TITLE, EMPTY_TEXT, replaces=[self.intro], text_width=EMPTY_TEXT_WIDTH
        )
        self.empty_state.set_empty(True)
        content = QWidget()
        column = _FitToViewport(content)
        column.addWidget(self.intro)
        column.addWidget(self.empty_state)
        column.addLayout(columns, 1)
        scroll = QScrollArea()  # below the sections' minimum heights, scroll
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    # ------------------------------------------------------------------ running

    def is_empty(self) -> bool:
        """Whether no tuner has shown a result yet (the panel explains the tuners instead of
        its one-line intro; the tuners' own boxes stay, they hold the Run buttons)."""
        return self.empty_state.is_shown()

    @property
    def running(self) -> str | None:
        """The kind of tuner running now, if any."""
        return self._active

    def run(self, kind: str, options: dict[str, Any] | None = None) -> bool:
        """Start tuner ``kind`` on the current choices; False if another one runs."""
        if self._active is not None:
            return False
        section = self.sections[kind]
        try:
            spec = self.state.run_spec()
        except UserError as exc:
            section.show_problem(str(exc))
            return False
        self._active = kind
        section.set_running(True)
        for other in self.sections.values():
            other.set_available(other is section)
        self.tuner_started.emit(kind)
        try:  # a fake runner may answer within start: the section is ready for it
            self.runner.start(kind, spec, dict(options or {}))
        except Exception as exc:  # the runner could not start at all: say so, keep going
            self._on_failed(f"The tuner could not start: {exc}.")
            return False
        return True

    def stop(self) -> None:
        """Ask the running tuner to stop; its section says so until it has."""
        if self._active is not None:
            self.sections[self._active].show_stopping()
            self.runner.stop()

    def shutdown(self) -> None:
        """End the running tuner and its process now (the window is closing)."""
        self.runner.shutdown()
        self._on_cancelled()

    def _end(self) -> TunerSection:
        section = self.sections[self._active or ""]
        self._active = None
        for each in self.sections.values():
            each.set_available(True)
        return section

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if self._active is not None:
            self.sections[self._active].show_progress(stage, done, total)

    def _on_finished(self, result: dict[str, Any]) -> None:
        if self._active is not None:
            kind = self._active
            self._end().show_result(result)
            self.empty_state.set_empty(False)
            self.tuner_ended.emit(kind, "finished")

    def _on_failed(self, message: str) -> None:
        if self._active is not None:
            kind = self._active
            self._end().show_failure(message)
            self.tuner_ended.emit(kind, "failed")

    def _on_cancelled(self) -> None:
        if self._active is not None:
            kind = self._active
            self._end().show_cancelled()
            self.tuner_ended.emit(kind, "cancelled")

    # ------------------------------------------------------------------ applying

    def apply(self, kind: str, changes: dict[str, Any]) -> bool:
        """Put ``changes`` into ``state.train`` if the recipe accepts them; else say why."""
        section = self.sections[kind]
        try:
            train = TrainSpec.model_validate({**self.state.train.model_dump(), **changes})
        except ValidationError as exc:
            section.show_problem(explain(exc, what="training recipe"))
            return False
        self.state.update(train=train)
        section.show_applied(_applied(changes))
        return True


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    sys.exit(run_standalone(TunePanel))
