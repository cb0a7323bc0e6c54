"""The Monitor's training curves, and what one batch of live engine events adds to them.

Live runs arrive as batches of engine events (about ten a second). ``LiveRun.collect`` sorts a
batch into an ``EventBatch``, which the panel draws once at its end, so the charts redraw once
per batch however many events it holds. This is the hot path while a run trains: one dict
look-up per event, nothing read from the store. Stored runs are drawn from the same curve list
(monitor_stored.py), so a finished run looks exactly as it did live.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cnn_lab.app.models.monitor_texts import start_text
from cnn_lab.engine.jobs.recording import METRIC_FIELDS
from cnn_lab.engine.util.progress_eta import StageProgress

TIMING_KEYS = tuple(key for key in METRIC_FIELDS["timing"] if key != "time.step_ms")
"""The step-time parts the stacked bar shows (their sum, the step, is not a part)."""

Sample = tuple[float, dict[str, float]]
"""One system reading: seconds since the run's first one, and ``{key: value}``."""


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

CURVES_BY_EVENT: dict[str, list[MetricCurve]] = defaultdict(list)
for _curve in METRIC_CURVES:
    CURVES_BY_EVENT[_curve.event].append(_curve)


@dataclass
class EventBatch:
    """What one batch of events adds; applied to the widgets once at its end.

    Of the events that replace rather than add (a step's progress, a timing, a diagnosis, a
    start, the finish) only the last one of a batch counts.
    """

    points: dict[str, dict[str, tuple[list[float], list[float]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    """``{chart: {curve: (xs, ys)}}``, the new points of each curve."""
    samples: list[Sample] = field(default_factory=list)
    step: Any = None
    timing: Any = None
    diagnosis: dict[str, Any] | None = None
    run_text: str | None = None
    """What the header says the run is doing (training, preparing the data) if that changed."""
    device_text: str | None = None
    finished: Any = None

    def add(self, chart: str, curve: str, x: float, y: float) -> None:
        xs, ys = self.points[chart].setdefault(curve, ([], []))
        xs.append(x)
        ys.append(y)


class LiveRun:
    """What the Monitor keeps of the run it follows live, across batches of its events."""

    def __init__(self, run_id: int | None) -> None:
        self.run_id = run_id
        self.t0: float | None = None
        """The time of the first system sample: the hardware charts' x starts there."""
        self.started: Any = None
        """The run's RunStarted event, once it came (its epochs complete the progress line)."""
        self.preparing = StageProgress()
        self._handlers: dict[str, Callable[[Any, EventBatch], None]] = {
            "step": self._on_metric_event,
            "epoch": self._on_metric_event,
            "system": self._on_system,
            "timing": self._on_timing,
            "bottleneck": self._on_bottleneck,
            "preparing": self._on_preparing,
            "started": self._on_started,
            "finished": self._on_finished,
        }
        """Event kind -> what it adds; kinds not listed (checkpoints) are ignored."""

    def collect(self, events: Iterable[Any]) -> EventBatch:
        """Sort a batch of engine events into what the charts and labels draw of it."""
        batch = EventBatch()
        handlers = self._handlers
        for event in events:
            handler = handlers.get(getattr(event, "kind", ""))
            if handler is not None:
                handler(event, batch)
        return batch

    def _on_metric_event(self, event: Any, batch: EventBatch) -> None:
        for curve in CURVES_BY_EVENT[event.kind]:
            x = event.epoch if curve.x == "epoch" else event.step
            batch.add(curve.chart, curve.curve, x, getattr(event, curve.field))
        if event.kind == "step":
            batch.step = event

    def _on_system(self, event: Any, batch: EventBatch) -> None:
        if self.t0 is None:
            self.t0 = event.time
        batch.samples.append((event.time - self.t0, dict(event.values)))

    def _on_timing(self, event: Any, batch: EventBatch) -> None:
        batch.timing = event

    def _on_bottleneck(self, event: Any, batch: EventBatch) -> None:
        batch.diagnosis = dict(event.diagnosis)

    def _on_started(self, event: Any, batch: EventBatch) -> None:
        self.started = event
        batch.device_text = start_text(event)
        resumed = f" (resumed at step {event.start_step:,})" if event.start_step else ""
        batch.run_text = f"Run {self.run_id} · training{resumed}"

    def _on_preparing(self, event: Any, batch: EventBatch) -> None:
        text = self.preparing.update(event.stage, event.done, event.total)
        batch.run_text = f"Run {self.run_id} · preparing the data: {text}"

    def _on_finished(self, event: Any, batch: EventBatch) -> None:
        batch.finished = event
