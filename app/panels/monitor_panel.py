"""The Monitor panel: a run's loss, accuracy, learning rate, speed, hardware and bottleneck.

Live runs arrive as batches of engine events (about ten a second); every chart appends to
its growing buffer and redraws once per batch. Stored runs are drawn from the run store with
the same curve registry, so a finished run looks exactly as it did live. The panel only shows:
it never changes the app state (an Apply on the verdict card is a signal for the window).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
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

from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.charts import DENSE_WIDTH, LiveChart
from cnn_lab.app.widgets.empty_state import EmptyState
from cnn_lab.app.widgets.gpu_charts import GPU_CURVES, GpuCharts
from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.app.widgets.step_time_bar import StepTimeBar, format_ms
from cnn_lab.app.widgets.system_charts import SYSTEM_KEYS, SystemCharts
from cnn_lab.app.widgets.verdict_card import VerdictCard
from cnn_lab.engine.jobs.recording import METRIC_FIELDS
from cnn_lab.engine.monitor.nvml import gpu_inventory
from cnn_lab.engine.store import RunRecord, RunStore
from cnn_lab.engine.store.curves import downsampled
from cnn_lab.engine.util.durations import format_duration
from cnn_lab.engine.util.progress_eta import StageProgress

SIDE_WIDTH = 380
MAX_GPUS = 16
"""How many GPU indices a stored run is searched for (the store has no list of its keys)."""
MAX_CORES = 1024
TIMING_KEYS = tuple(key for key in METRIC_FIELDS["timing"] if key != "time.step_ms")
"""The step-time parts the stacked bar shows (their sum, the step, is not a part)."""
EMPTY_TITLE = "No run to watch yet"
EMPTY_TEXT = (
    "Press Train (Ctrl+Return) to train the current data, architecture and hyperparameters. "
    "While it trains, the loss, accuracy, learning rate and images per second are drawn here, "
    "the Hardware tab shows CPU, memory and GPU use, and the side column splits each step's "
    "time and says what slows the run down. Or select a finished run in Runs to see how it went."
)


@dataclass(frozen=True)
class MetricCurve:
    """One training curve, both as a live event field and as a stored metric key.

    Which event kind and field a key comes from is the job's own map
    (engine/jobs/recording.METRIC_FIELDS), so the live curve and the stored one cannot disagree.
    """

    key: str
    chart: str
    curve: str
    x: str = "step"
    """The x of a point: the step, or the epoch (accuracy is read per epoch)."""
    event: str = field(init=False)
    field: str = field(init=False)

    def __post_init__(self) -> None:
        kind, name = next(
            (kind, fields[self.key]) for kind, fields in METRIC_FIELDS.items() if self.key in fields
        )
        object.__setattr__(self, "event", kind)
        object.__setattr__(self, "field", name)

    @property
    def markers(self) -> bool:
        return self.event == "epoch"  # a few points: show each one


METRIC_CURVES: tuple[MetricCurve, ...] = (
    MetricCurve("train.loss", "loss_chart", "train (step)"),
    MetricCurve("epoch.train_loss", "loss_chart", "train (epoch)"),
    MetricCurve("val.loss", "loss_chart", "validation"),
    MetricCurve("epoch.train_accuracy", "accuracy_chart", "train", "epoch"),
    MetricCurve("val.accuracy", "accuracy_chart", "validation", "epoch"),
    MetricCurve("lr", "lr_chart", "learning rate"),
    MetricCurve("train.images_per_s", "speed_chart", "images/s"),
    MetricCurve("epoch.images_per_s", "speed_chart", "epoch mean"),
)
"""Every training curve; live events and stored runs both draw from this one list."""


def _count(n: int) -> str:
    """Parameters as a person says them: 11.2 M, 850 k."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} M"
    if n >= 1_000:
        return f"{n / 1e3:.0f} k"
    return str(n)


@dataclass
class _Batch:
    """What one batch of events adds; applied to the widgets once at its end."""

    points: dict[str, dict[str, tuple[list[float], list[float]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    step: Any = None
    timing: Any = None
    diagnosis: dict[str, Any] | None = None
    finished: Any = None

    def add(self, chart: str, curve: str, x: float, y: float) -> None:
        xs, ys = self.points[chart].setdefault(curve, ([], []))
        xs.append(x)
        ys.append(y)


class MonitorPanel(QWidget):
    """Follows one run: live while it trains, or a stored run chosen in the Runs panel."""

    title = "Monitor"
    apply_recommendation = Signal(dict)
    """``{TrainSpec field: value}`` when the person presses Apply on a recommendation."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_id: int | None = None
        self._t0: float | None = None
        self._preparing = StageProgress()
        self._started: Any = None
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
        self.step_caption = plain_label("Step time appears after the first steps.")
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
        self.run_id = run_id
        self._t0 = None
        self._started = None
        self._preparing = StageProgress()
        self._reset_curves()
        self.system_charts.reset()
        self.gpu_charts.reset()
        self.step_bar.clear()
        self.step_caption.setText("Step time appears after the first steps.")
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

    # ------------------------------------------------------------------ live events

    def on_events(self, run_id: int, events: list[Any]) -> None:
        """Append a batch of engine events; one redraw per batch."""
        if run_id != self.run_id:
            return
        batch = _Batch()
        for event in events:
            handler = _HANDLERS.get(getattr(event, "kind", ""))
            if handler is not None:
                handler(self, event, batch)
        self._apply(batch)

    def _on_metric_event(self, event: Any, batch: _Batch) -> None:
        for curve in _CURVES_BY_EVENT[event.kind]:
            x = event.epoch if curve.x == "epoch" else event.step
            batch.add(curve.chart, curve.curve, x, getattr(event, curve.field))
        if event.kind == "step":
            batch.step = event

    def _on_system(self, event: Any, batch: _Batch) -> None:
        if self._t0 is None:
            self._t0 = event.time
        batch.samples.append((event.time - self._t0, dict(event.values)))

    def _on_timing(self, event: Any, batch: _Batch) -> None:
        batch.timing = event

    def _on_bottleneck(self, event: Any, batch: _Batch) -> None:
        batch.diagnosis = dict(event.diagnosis)

    def _on_started(self, event: Any, batch: _Batch) -> None:
        self._started = event
        self.device_label.setText(self._describe_start(event))
        resumed = f" (resumed at step {event.start_step:,})" if event.start_step else ""
        self.run_label.setText(f"Run {self.run_id} · training{resumed}")

    def _on_preparing(self, event: Any, batch: _Batch) -> None:
        text = self._preparing.update(event.stage, event.done, event.total)
        self.run_label.setText(f"Run {self.run_id} · preparing the data: {text}")

    def _on_finished(self, event: Any, batch: _Batch) -> None:
        self._show_reason(event.reason or "", event.hint or "")
        batch.finished = event

    def _apply(self, batch: _Batch) -> None:
        for chart, points in batch.points.items():
            getattr(self, chart).append_batch(points)
        if batch.samples:
            self.system_charts.add_samples(batch.samples)
            self.gpu_charts.add_samples(batch.samples)
        if batch.step is not None:
            self.progress_label.setText(self._progress_text(batch.step))
        if batch.timing is not None:
            t = batch.timing
            self._show_timing(t.data_ms, t.copy_ms, t.compute_ms, t.other_ms, t.steps, t.batch_size)
        if batch.diagnosis is not None:
            self.verdict_card.set_diagnosis(batch.diagnosis)
        if batch.finished is not None and self.run_id is not None:
            self.finish(self.run_id, batch.finished.status, batch.finished.reason or "")

    # ------------------------------------------------------------------ texts

    @staticmethod
    def _describe_start(event: Any) -> str:
        parts = [str(event.device)]
        if event.batch_size:
            parts.append(f"batch {event.batch_size:,}")
        parts.append(f"{event.train_images:,} train / {event.val_images:,} validation images")
        parts.append(f"{len(event.classes)} classes")
        parts.append(f"{_count(event.params)} parameters")
        if event.data_on_device:
            parts.append("data on the device")
        return " · ".join(parts)

    def _progress_text(self, step: Any) -> str:
        epochs = f"/{self._started.epochs}" if self._started is not None else ""
        eta = format_duration(step.eta_s, "spoken")
        return f"epoch {step.epoch}{epochs} · {step.progress:.0%} · ETA {eta}"

    def _show_timing(
        self, data: float, copy: float, compute: float, other: float, steps: int, batch: int
    ) -> None:
        self.step_bar.set_times(data, copy, compute, other)
        total = self.step_bar.total_ms()
        parts = [f"{format_ms(total)} per step"]
        if batch and total > 0:
            parts.append(f"{batch * 1000.0 / total:,.0f} images/s")
        if steps:
            parts.append(f"mean of the last {steps:,} steps")
        self.step_caption.setText(" · ".join(parts))

    def _show_reason(self, reason: str, hint: str) -> None:
        text = "\n".join(part for part in (reason, hint) if part)
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
            done = f"{last[0]:,.0f} steps"
            epochs = self.accuracy_chart.last("validation")
            if epochs is not None:
                done = f"{epochs[0]:.0f} epochs · {done}"
            self.progress_label.setText(done)

    # ------------------------------------------------------------------ stored runs

    def show_stored_run(self, record: RunRecord, store: RunStore) -> None:
        """Draw a finished (or crashed) run from the store, as it looked live."""
        self.begin(record.id)
        for curve in METRIC_CURVES:
            points = downsampled(store, record.id, curve.key)  # a long run: peaks, not all
            if points:
                xs = [p.epoch if curve.x == "epoch" else p.step for p in points]
                getattr(self, curve.chart).set(curve.curve, xs, [p.value for p in points])
        samples = stored_samples(store, record.id)
        if samples:
            t0 = samples[0][0]
            shifted = [(t - t0, values) for t, values in samples]
            self.system_charts.add_samples(shifted)
            self.gpu_charts.add_samples(shifted)
        timing = [store.last_metric(record.id, key) for key in TIMING_KEYS]
        if all(point is not None for point in timing):
            self._show_timing(*(point.value for point in timing if point is not None), 0, 0)
            self.step_caption.setText(self.step_caption.text() + " · at the end of the run")
        self.verdict_card.set_diagnosis(dict(record.summary.get("bottleneck") or {}))
        self._show_reason(record.reason or "", record.hint or "")
        self.finish(record.id, record.status, record.reason or "")
        if record.duration_s is not None and self.progress_label.text():
            self.progress_label.setText(
                f"{self.progress_label.text()} in {format_duration(record.duration_s, 'spoken')}"
            )
        device = record.summary.get("device") or record.device or ""
        params = record.summary.get("params")
        extra = [f"{_count(int(params))} parameters"] if isinstance(params, int) else []
        self.device_label.setText(" · ".join([p for p in (record.name, device) if p] + extra))


def stored_samples(store: RunStore, run_id: int) -> list[tuple[float, dict[str, float]]]:
    """A run's system samples regrouped as ``(time, {key: value})`` readings, oldest first.

    The sampler writes every key of one reading with the same time, so grouping by time gives
    back the readings the live panel saw, and both paths draw through the same code.
    """
    keys = list(SYSTEM_KEYS)
    for core in range(MAX_CORES):  # cores are numbered 0..n-1 without gaps
        if not store.system_samples(run_id, f"cpu.core{core}.percent"):
            break
        keys.append(f"cpu.core{core}.percent")
    for index in range(MAX_GPUS):
        if store.system_samples(run_id, f"gpu{index}.mem_used_mb") or store.system_samples(
            run_id, f"gpu{index}.util_percent"
        ):
            keys += [f"gpu{index}.{metric}" for metric in (*GPU_CURVES, "throttle_reasons")]
    readings: dict[float, dict[str, float]] = defaultdict(dict)
    for key in keys:
        for sample in store.system_samples(run_id, key):
            readings[sample.time][key] = sample.value
    return sorted(readings.items())


_Handler = Callable[[MonitorPanel, Any, _Batch], None]
_HANDLERS: dict[str, _Handler] = {
    "step": MonitorPanel._on_metric_event,
    "epoch": MonitorPanel._on_metric_event,
    "system": MonitorPanel._on_system,
    "timing": MonitorPanel._on_timing,
    "bottleneck": MonitorPanel._on_bottleneck,
    "preparing": MonitorPanel._on_preparing,
    "started": MonitorPanel._on_started,
    "finished": MonitorPanel._on_finished,
}
"""Event kind -> what the panel does with it; kinds not listed (checkpoints) are ignored."""

_CURVES_BY_EVENT: dict[str, list[MetricCurve]] = defaultdict(list)
for _curve in METRIC_CURVES:
    _CURVES_BY_EVENT[_curve.event].append(_curve)


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(MonitorPanel))
