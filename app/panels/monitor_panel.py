"""The Monitor panel: a run's loss, accuracy, learning rate, speed, hardware and bottleneck.

Live runs arrive as batches of engine events (about ten a second); a plain LiveRun
(app/models/monitor_curves.py) sorts each batch, and every chart appends to its growing buffer
and redraws once per batch. Stored runs are read (app/models/monitor_stored.py) with the same
curve list, so a finished run looks exactly as it did live; what the header says is
app/models/monitor_texts.py. The panel only shows:
it never changes the app state (an Apply on the verdict card is a signal for the window).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.monitor_curves import METRIC_CURVES, EventBatch, LiveRun
from cnn_lab.app.models.monitor_stored import StoredRun, read_stored_run
from cnn_lab.app.models.monitor_texts import (
    done_text,
    progress_text,
    reason_text,
    stored_device_text,
    timing_caption,
)
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.charts import DENSE_WIDTH, LiveChart
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.gpu_charts import GPU_CURVES, GpuCharts
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.app.widgets.step_time_bar import StepTimeBar, format_ms
from cnn_lab.app.widgets.system_charts import SYSTEM_KEYS, SystemCharts
from cnn_lab.app.widgets.verdict_card import VerdictCard
from cnn_lab.engine.monitor.nvml import gpu_inventory
from cnn_lab.engine.store import RunRecord, RunRepository
from cnn_lab.engine.util.durations import format_duration

SIDE_WIDTH = 380
GPU_METRICS = (*GPU_CURVES, "throttle_reasons")
"""What a stored run is read for of each GPU: the charts' curves and the throttle flags."""
NO_STEP_TIME = "Step time appears after the first steps."
EMPTY_TITLE = "No run to watch yet"
EMPTY_TEXT = (
    "Press Train (Ctrl+Return) to train the current data, architecture and hyperparameters. "
    "While it trains, the loss, accuracy, learning rate and images per second are drawn here, "
    "the Hardware tab shows CPU, memory and GPU use, and the side column splits each step's "
    "time and says what slows the run down. Or select a finished run in Runs to see how it went."
)


def read_for_monitor(
    store: RunRepository, run_id: int | None
) -> tuple[RunRecord, StoredRun] | None:
    """Run ``run_id`` (None: the newest run) and what the Monitor draws of it; None when the
    store has no runs. Called on the store's thread (``state.store.call``), never the GUI's."""
    if run_id is None:
        latest = store.list_runs(limit=1)
        if not latest:
            return None
        record = latest[0]
    else:
        record = store.get_run(run_id)
    return record, read_stored_run(store, record.id, SYSTEM_KEYS, GPU_METRICS)


class MonitorPanel(QWidget):
    """Follows one run: live while it trains, or a stored run chosen in the Runs panel."""

    title = "Monitor"
    apply_recommendation = Signal(dict)
    """``{TrainSpec field: value}`` when the person presses Apply on a recommendation."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.live = LiveRun(None)
        self.inventory = gpu_inventory()

        self._build_header()
        self.loss_chart = LiveChart("Loss", y_label="cross-entropy")
        self.accuracy_chart = LiveChart(
            "Accuracy", x_label="epoch", y_label="fraction correct", legend_at="bottom-right"
        )
        self.lr_chart = LiveChart("Learning rate", y_label="lr")
        self.speed_chart = LiveChart("Throughput", y_label="images / s")
        self.accuracy_chart.plot.setYRange(0, 1)
        self.system_charts = SystemCharts()
        self.gpu_charts = GpuCharts(
            self.inventory.message, machine_has_gpu=self.inventory.available
        )
        self.step_bar = StepTimeBar()
        self.step_caption = plain_label(NO_STEP_TIME)
        self.verdict_card = VerdictCard()
        self.verdict_card.apply_requested.connect(self.apply_recommendation)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._training_tab(), "Training")
        self.hardware_tab = self._hardware_tab()
        self.tabs.addTab(self.hardware_tab, "Hardware")
        self.content = QWidget()
        body = QHBoxLayout(self.content)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.tabs, 1)
        body.addWidget(self._side_column())
        self.empty_state = EmptyState(EMPTY_TITLE, EMPTY_TEXT, replaces=[self.content])
        layout = QVBoxLayout(self)
        layout.addLayout(self._header)
        layout.addWidget(self.content, 1)
        layout.addWidget(self.empty_state, 1)
        self._reset_curves()
        self.empty_state.set_empty(True)
        # Another database has other runs: what was shown belongs to the old one. (The window
        # refuses to switch while runs train, so this never hides a live run.)
        state.db_changed.connect(lambda _path: self.show_nothing())

    # ------------------------------------------------------------------ layout

    def _build_header(self) -> None:
        self.run_label = plain_label(wrap=False)  # empty until a run: the empty state says why
        bold = self.run_label.font()
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.15)
        self.run_label.setFont(bold)
        self.progress_label = plain_label(wrap=False)
        self.device_label = plain_label(wrap=False)
        self.device_label.setStyleSheet("color: palette(mid);")
        self.gpu_label = plain_label(self.inventory.message, wrap=False)
        self.gpu_label.setToolTip("GPU figures come from NVIDIA's NVML.")
        self.gpu_label.setStyleSheet("color: palette(mid);")
        self.reason_label = plain_label()
        self.reason_label.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(self.run_label)
        top.addSpacing(16)
        top.addWidget(self.progress_label)
        top.addStretch(1)
        top.addWidget(self.gpu_label)
        self._header = QVBoxLayout()
        self._header.setSpacing(2)
        self._header.addLayout(top)
        self._header.addWidget(self.device_label)
        self._header.addWidget(self.reason_label)

    def _training_tab(self) -> QWidget:
        tab = QWidget()
        grid = QGridLayout(tab)
        grid.setContentsMargins(0, 4, 0, 0)
        for i, chart in enumerate(self.training_charts()):
            grid.addWidget(chart, i // 2, i % 2)
        return tab

    def _hardware_tab(self) -> QWidget:
        # No scroll area: its height-for-width sizing of the wrapped labels asked for the
        # charts' preferred height and scrolled at 1280x800. The minimum heights fit anyway.
        content = QWidget()
        self._hardware = QBoxLayout(QBoxLayout.Direction.LeftToRight, content)
        self._hardware.setContentsMargins(0, 4, 0, 0)
        self._hardware.addWidget(self.system_charts)
        self._hardware.addWidget(self.gpu_charts)
        self.gpu_charts.showing_changed.connect(self._arrange_hardware)
        self._arrange_hardware(self.gpu_charts.showing_charts)
        return content

    def _arrange_hardware(self, gpu_charts_shown: bool) -> None:
        """With GPU charts: CPU and memory in a column on the left, the GPUs' 2×2 beside it.
        Without: the "No NVIDIA GPU" sentence on top and CPU and memory across the width."""
        self.system_charts.set_stacked(gpu_charts_shown)
        if gpu_charts_shown:
            self._hardware.setDirection(QBoxLayout.Direction.LeftToRight)
            self._hardware.setStretch(0, 1)
            self._hardware.setStretch(1, 2)
        else:
            self._hardware.setDirection(QBoxLayout.Direction.BottomToTop)
            self._hardware.setStretch(0, 1)
            self._hardware.setStretch(1, 0)

    def _side_column(self) -> QWidget:
        """The step-time bar and the verdict card, in a column that scrolls when the window
        is short (a verdict with several recommendations is taller than the charts)."""
        timing = QGroupBox("Step time")
        box = QVBoxLayout(timing)
        box.addWidget(self.step_caption)
        box.addWidget(self.step_bar)
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(0, 0, 4, 0)
        column.addWidget(timing)
        column.addWidget(self.verdict_card)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(SIDE_WIDTH)
        return scroll

    def training_charts(self) -> list[LiveChart]:
        return [self.loss_chart, self.accuracy_chart, self.lr_chart, self.speed_chart]

    def charts(self) -> list[LiveChart]:
        """Every chart of the panel (training, CPU and memory, GPUs)."""
        return [
            *self.training_charts(),
            *self.system_charts.charts(),
            *self.gpu_charts.charts(),
        ]

    # ------------------------------------------------------------------ a new run

    def is_empty(self) -> bool:
        """Whether the panel shows its empty state (no run yet) instead of the charts."""
        return self.empty_state.is_shown()

    def show_nothing(self) -> None:
        """Forget the run shown and go back to the empty state (e.g. its run was deleted)."""
        self.begin(None)
        self.run_label.setText("")

    def begin(self, run_id: int | None) -> None:
        """Clear everything for a new live run (None: no run, the empty state)."""
        self.empty_state.set_empty(run_id is None)
        self.live = LiveRun(run_id)
        self._reset_curves()
        self.system_charts.reset()
        self.gpu_charts.reset()
        self.step_bar.clear()
        self.step_caption.setText(NO_STEP_TIME)
        self.verdict_card.clear()
        self.run_label.setText(f"Run {run_id} · starting…")
        self.progress_label.setText("")
        self.device_label.setText("")
        self.reason_label.setText("")
        self.reason_label.setVisible(False)

    def _reset_curves(self) -> None:
        """Empty training charts with their curves in place, so legends and colours are
        the same for every run, live or stored."""
        for chart in self.training_charts():
            chart.clear()
        for curve in METRIC_CURVES:
            width = 2 if curve.markers else DENSE_WIDTH
            getattr(self, curve.chart).add_curve(curve.curve, markers=curve.markers, width=width)

    @property
    def run_id(self) -> int | None:
        """The run the panel follows (None: none, the empty state)."""
        return self.live.run_id

    # ------------------------------------------------------------------ live events

    def on_events(self, run_id: int, events: list[Any]) -> None:
        """Append a batch of engine events; one redraw per batch."""
        if run_id == self.live.run_id:
            self._apply(self.live.collect(events))

    def _apply(self, batch: EventBatch) -> None:
        if batch.run_text is not None:
            self.run_label.setText(batch.run_text)
        if batch.device_text is not None:
            self.device_label.setText(batch.device_text)
        if batch.finished is not None:
            self._show_reason(batch.finished.reason or "", batch.finished.hint or "")
        for chart, points in batch.points.items():
            getattr(self, chart).append_batch(points)
        if batch.samples:
            self.system_charts.add_samples(batch.samples)
            self.gpu_charts.add_samples(batch.samples)
        if batch.step is not None:
            started = self.live.started
            epochs = started.epochs if started is not None else None
            self.progress_label.setText(progress_text(batch.step, epochs))
        if batch.timing is not None:
            t = batch.timing
            self._show_timing(t.data_ms, t.copy_ms, t.compute_ms, t.other_ms, t.steps, t.batch_size)
        if batch.diagnosis is not None:
            self.verdict_card.set_diagnosis(batch.diagnosis)
        if batch.finished is not None and self.run_id is not None:
            self.finish(self.run_id, batch.finished.status, batch.finished.reason or "")

    def _show_timing(
        self, data: float, copy: float, compute: float, other: float, steps: int, batch: int
    ) -> None:
        self.step_bar.set_times(data, copy, compute, other)
        total = self.step_bar.total_ms()
        self.step_caption.setText(timing_caption(format_ms(total), total, batch, steps))

    def _show_reason(self, reason: str, hint: str) -> None:
        text = reason_text(reason, hint)
        self.reason_label.setText(text)
        self.reason_label.setVisible(bool(text))

    def finish(self, run_id: int, status: str, reason: str) -> None:
        if run_id != self.run_id:
            return
        self.run_label.setText(f"Run {run_id} · {status}")
        if reason and reason not in self.reason_label.text():
            self._show_reason(reason, "")
        last = self.loss_chart.last("train (step)")
        if last is not None:
            epochs = self.accuracy_chart.last("validation")
            self.progress_label.setText(
                done_text(last[0], epochs[0] if epochs is not None else None)
            )

    # ------------------------------------------------------------------ stored runs

    def show_stored_run(self, record: RunRecord, run: StoredRun) -> None:
        """Draw a finished (or crashed) run, read by ``read_for_monitor``, as it looked live."""
        self.begin(record.id)
        for curve, xs, ys in run.curves:
            getattr(self, curve.chart).set(curve.curve, xs, ys)
        if run.samples:
            self.system_charts.add_samples(run.samples)
            self.gpu_charts.add_samples(run.samples)
        if run.timing is not None:
            self._show_timing(*run.timing, 0, 0)
            self.step_caption.setText(self.step_caption.text() + " · at the end of the run")
        self.verdict_card.set_diagnosis(dict(record.summary.get("bottleneck") or {}))
        self._show_reason(record.reason or "", record.hint or "")
        self.finish(record.id, record.status, record.reason or "")
        if record.duration_s is not None and self.progress_label.text():
            self.progress_label.setText(
                f"{self.progress_label.text()} in {format_duration(record.duration_s, 'spoken')}"
            )
        self.device_label.setText(stored_device_text(record))


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(MonitorPanel))
