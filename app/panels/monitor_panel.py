"""The Monitor panel: live loss, accuracy, throughput and system use of the training run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from PySide6.QtWidgets import QGridLayout, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.charts import LiveChart
from cnn_lab.engine.monitor.nvml import gpu_inventory
from cnn_lab.engine.store import RunRecord, RunStore

# Stored metric key -> (chart attribute, curve name). Shared by live events and stored runs.
STORED_CURVES = {
    "train.loss": ("loss_chart", "train (step)"),
    "epoch.train_loss": ("loss_chart", "train (epoch)"),
    "val.loss": ("loss_chart", "validation"),
    "epoch.train_accuracy": ("accuracy_chart", "train"),
    "val.accuracy": ("accuracy_chart", "validation"),
    "train.images_per_s": ("speed_chart", "images/s"),
}
SYSTEM_CURVES = {"cpu.percent": "CPU %", "ram.percent": "RAM %"}


class MonitorPanel(QWidget):
    title = "Monitor"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_id: int | None = None
        self._t0: float | None = None

        self.run_label = QLabel("No run yet: press Train to start one.")
        self.device_label = QLabel("")
        inventory = gpu_inventory()
        self.gpu_label = QLabel(inventory.message)
        self.gpu_label.setToolTip("GPU figures come from NVIDIA's NVML.")
        header = QHBoxLayout()
        for label in (self.run_label, self.device_label, self.gpu_label):
            header.addWidget(label)
        header.addStretch(1)

        self.loss_chart = LiveChart("Loss", y_label="cross-entropy")
        self.accuracy_chart = LiveChart("Accuracy", x_label="epoch", y_label="fraction correct")
        self.speed_chart = LiveChart("Throughput", y_label="images / s")
        self.system_chart = LiveChart("System", x_label="seconds", y_label="%")
        self.accuracy_chart.plot.setYRange(0, 1)
        grid = QGridLayout()
        grid.addWidget(self.loss_chart, 0, 0)
        grid.addWidget(self.accuracy_chart, 0, 1)
        grid.addWidget(self.speed_chart, 1, 0)
        grid.addWidget(self.system_chart, 1, 1)
        charts = QGroupBox("Training")
        charts.setLayout(grid)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(charts, 1)

    def charts(self) -> list[LiveChart]:
        return [self.loss_chart, self.accuracy_chart, self.speed_chart, self.system_chart]

    def begin(self, run_id: int) -> None:
        """Clear the charts for a new live run."""
        self.run_id = run_id
        self._t0 = None
        for chart in self.charts():
            chart.clear()
        self.run_label.setText(f"Run {run_id}: starting…")
        self.device_label.setText("")

    def on_events(self, run_id: int, events: list[Any]) -> None:
        """Append a batch of engine events; one redraw per batch."""
        if run_id != self.run_id:
            return
        series: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(
            lambda: ([], [])
        )

        def add(chart: str, curve: str, x: float, y: float) -> None:
            xs, ys = series[(chart, curve)]
            xs.append(x)
            ys.append(y)

        for event in events:
            kind = getattr(event, "kind", "")
            if kind == "step":
                add("loss_chart", "train (step)", event.step, event.loss)
                add("speed_chart", "images/s", event.step, event.images_per_s)
            elif kind == "epoch":
                add("loss_chart", "train (epoch)", event.step, event.train_loss)
                add("loss_chart", "validation", event.step, event.val_loss)
                add("accuracy_chart", "train", event.epoch, event.train_accuracy)
                add("accuracy_chart", "validation", event.epoch, event.val_accuracy)
                self.run_label.setText(
                    f"Run {run_id}: epoch {event.epoch}, val accuracy {event.val_accuracy:.1%}"
                )
            elif kind == "system":
                if self._t0 is None:
                    self._t0 = event.time
                for key, curve in SYSTEM_CURVES.items():
                    if key in event.values:
                        add("system_chart", curve, event.time - self._t0, event.values[key])
            elif kind == "started":
                self.device_label.setText(
                    f"{event.device} · {event.train_images:,} train images · "
                    f"{event.params:,} parameters"
                )
                self.run_label.setText(f"Run {run_id}: training")
        for (chart, curve), (xs, ys) in series.items():
            getattr(self, chart).append(curve, xs, ys)

    def finish(self, run_id: int, status: str, reason: str) -> None:
        if run_id == self.run_id:
            self.run_label.setText(f"Run {run_id}: {status}" + (f" — {reason}" if reason else ""))

    def show_stored_run(self, record: RunRecord, store: RunStore) -> None:
        """Draw a finished run from the store (used at start-up and from the Runs panel)."""
        self.begin(record.id)
        for key, (chart, curve) in STORED_CURVES.items():
            points = store.metrics(record.id, key)
            if not points:
                continue
            use_epoch = chart == "accuracy_chart"
            xs = [p.epoch if use_epoch else p.step for p in points]
            getattr(self, chart).set(curve, xs, [p.value for p in points])
        for key, curve in SYSTEM_CURVES.items():
            samples = store.system_samples(record.id, key)
            if samples:
                t0 = samples[0].time
                self.system_chart.set(
                    curve, [s.time - t0 for s in samples], [s.value for s in samples]
                )
        self.finish(record.id, record.status, record.reason or "")
        device = record.summary.get("device") or record.device
        self.device_label.setText(device or "")


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(MonitorPanel))
