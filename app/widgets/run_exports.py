"""The Runs panel's "Export model…" and "Report…": ask where, then write in the background
with a busy bar, one of each at a time, and say how it went.

Neither writer reports steps (an export loads torch and traces the network, a report reads
the store and draws), so the bars are busy bars, never a made-up ETA. The panel makes the
tasks (the bridge's thread-pool Task); this widget only starts them and follows them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QPushButton, QWidget

from cnn_lab.app.widgets.report_export import ask_report_path
from cnn_lab.app.widgets.task_progress import TaskProgress

EXPORT_FILTERS = {
    "TorchScript (*.pt)": "torchscript",
    "ONNX (*.onnx)": "onnx",
    "torch.export program (*.pt2)": "torch_export",
}
"""What "Export model…" offers: file-dialog filter → export format of engine/models/export.py."""

TaskFactory = Callable[[int, str, Any], Any]
"""``(run_id, path, fmt) -> Task`` not yet started; ``fmt`` None lets a report pick by suffix."""


class RunExports(QObject):
    """The two buttons and their bars; ``message`` carries each sentence for the panel's
    detail line, ``idle`` says a task ended (the panel enables its buttons again)."""

    message = Signal(str)
    idle = Signal()

    def __init__(
        self, current_run: Callable[[], int | None], *, export: TaskFactory,
        report: TaskFactory, parent: QWidget,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self._parent, self._current_run = parent, current_run
        self._factories = {"export": export, "report": report}
        self.tasks: dict[str, Any] = {}
        self.export_button = QPushButton("Export model…")
        self.export_button.setToolTip(
            "Write the selected run's trained network as TorchScript, ONNX or a torch.export "
            "program; the file is checked against PyTorch's outputs before it is kept."
        )
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "Write the selected run's report: a self-contained HTML page or a PDF with its "
            "data, architecture, recipe, curves, system use, verdict and evaluation, or every "
            "metric as CSV or JSON."
        )
        self.export_progress = TaskProgress(bar_width=120)
        self.report_progress = TaskProgress(bar_width=120)
        self.export_button.clicked.connect(self._choose_export)
        self.report_button.clicked.connect(self._choose_report)

    def busy(self, kind: str) -> bool:
        """Whether an ``"export"`` or a ``"report"`` is being written."""
        return kind in self.tasks

    def _choose_export(self) -> None:
        run_id = self._current_run()
        if run_id is None:
            return
        path, chosen = QFileDialog.getSaveFileName(
            self._parent, f"Export run {run_id}'s model", f"run-{run_id}.pt",
            ";;".join(EXPORT_FILTERS),
        )  # fmt: skip
        if path:
            self.export_run(run_id, path, EXPORT_FILTERS.get(chosen, "torchscript"))

    def _choose_report(self) -> None:
        run_id = self._current_run()
        if run_id is None:
            return
        title, suggested = f"Report of run {run_id}", f"run-{run_id}-report.html"
        chosen = ask_report_path(self._parent, title, suggested)
        if chosen:
            self.export_report(run_id, *chosen)

    def export_run(self, run_id: int, path: str, fmt: str) -> Any:
        """Export in the background; the sentence comes as ``message``."""
        doing = (f"Exporting run {run_id} as {fmt}…", f"Exporting run {run_id}")
        return self._start("export", run_id, path, fmt, doing, "Export failed: ")

    def export_report(self, run_id: int, path: str, fmt: str | None = None) -> Any:
        """Write the run's report in the background; the sentence comes as ``message``."""
        doing = (f"Writing run {run_id}'s report…", f"Run {run_id}'s report")
        return self._start("report", run_id, path, fmt, doing, "The report was not written: ")

    def _start(
        self, kind: str, run_id: int, path: str, fmt: str | None, doing: tuple[str, str],
        failed: str,
    ) -> Any:  # fmt: skip
        task = self._factories[kind](run_id, path, fmt)
        self.tasks[kind] = task
        button, progress = self._widgets(kind)
        button.setEnabled(False)
        self.message.emit(doing[0])
        progress.start(doing[1])  # no steps to count: a busy bar
        task.connect_outcomes(
            finished=partial(self._done, kind, ""), failed=partial(self._done, kind, failed)
        )
        return task.start()

    def _done(self, kind: str, failed: str, message: str) -> None:
        del self.tasks[kind]
        self._widgets(kind)[1].finish()
        self.idle.emit()
        self.message.emit(failed + message)

    def _widgets(self, kind: str) -> tuple[QPushButton, TaskProgress]:
        if kind == "export":
            return self.export_button, self.export_progress
        return self.report_button, self.report_progress
