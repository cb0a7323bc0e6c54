"""The Monitor stays responsive while a run streams, and a million-point curve redraws fast.

Two measurements, offscreen Qt, the panel at 1280x800:

1. Event-loop lag. A 16 ms QTimer (one frame at 60 Hz) records how late each of its ticks
   comes, while the Monitor panel draws a run streaming at full rate:
   - ``real_run``: a real training job (small_cnn on sample:shapes, batch 32, on the CPU) in a
     child process through the app's own JobController, exactly as the window runs it;
   - ``replay``: a synthetic stream at a GPU-sized rate (``--replay-steps-per-s``, with
     system samples of two GPUs at 2 Hz), batched at 10 Hz as the job thread batches it, since
     a GPU trains many more steps a second than this CPU does.
   Baselines: the same timer with the panel shown and no run, and the same real run with
   its events not drawn (on a machine with few cores the training process itself takes CPU
   from the GUI). p50/p99/max lag in ms.
2. Redraw of a 1,000,000-point curve: ``LiveChart.set`` plus a forced paint (``grab()``),
   median of ``--repeat``, against the baseline of the same curve in a plain pyqtgraph
   PlotDataItem without downsampling and clip-to-view. Also one live batch appended to a
   million-point curve (the per-batch cost late in a long run).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 16
POINTS = 1_000_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def lag_figures(lags_ms: list[float]) -> dict[str, Any]:
    return {
        "ticks": len(lags_ms),
        "p50_ms": round(percentile(lags_ms, 50), 2),
        "p99_ms": round(percentile(lags_ms, 99), 2),
        "max_ms": round(max(lags_ms), 2) if lags_ms else None,
    }


class LagMeter:
    """A 16 ms timer that records how late each tick is, while ``recording`` is set."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.lags_ms: list[float] = []
        self.recording = False
        self._last: float | None = None
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.recording and self._last is not None:
            self.lags_ms.append(max(0.0, (now - self._last) * 1000.0 - TICK_MS))
        self._last = now

    def stop(self) -> None:
        self.timer.stop()


def spin(app: Any, until: Callable[[], bool], timeout_s: float) -> None:
    """Run the event loop until ``until()`` or the timeout."""
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.001)


def new_panel(db: Path) -> Any:
    from cnn_lab.app.panels.monitor_panel import MonitorPanel
    from cnn_lab.app.state import AppState

    panel = MonitorPanel(AppState(db))
    panel.resize(1280, 800)
    panel.show()
    return panel


# ----------------------------------------------------------------------------- lag: idle


def idle_lag(app: Any, db: Path, seconds: float) -> dict[str, Any]:
    panel = new_panel(db)
    meter = LagMeter()
    meter.recording = True
    spin(app, lambda: False, seconds)
    meter.stop()
    panel.close()
    return {**lag_figures(meter.lags_ms), "seconds": seconds}


# ----------------------------------------------------------------------------- lag: real run


def real_run_lag(app: Any, db: Path, epochs: int, limit: int, *, draw: bool) -> dict[str, Any]:
    """Train for real in a child process through the JobController and measure the lag
    while its steps stream into the panel (``draw``), or while the panel ignores them: the
    baseline that shows what the training process alone costs the GUI on a machine whose
    cores it shares."""
    from cnn_lab.app.bridge.job_controller import JobController
    from cnn_lab.engine.specs import RunSpec

    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": limit},
            "architecture": {"preset": "small_cnn"},
            "train": {"epochs": epochs, "batch_size": 32, "device": "cpu"},
        }
    )
    panel = new_panel(db)
    controller = JobController(db, slots=["cpu"])
    meter = LagMeter()
    counts = {"batches": 0, "steps": 0, "events": 0, "system": 0}
    state: dict[str, Any] = {"first_step": None, "last_step": None, "finished": None}

    def on_events(run_id: int, events: list[Any]) -> None:
        if draw:
            panel.on_events(run_id, events)
        steps = sum(1 for e in events if getattr(e, "kind", "") == "step")
        counts["batches"] += 1
        counts["events"] += len(events)
        counts["steps"] += steps
        counts["system"] += sum(1 for e in events if getattr(e, "kind", "") == "system")
        if steps:
            now = time.perf_counter()
            if state["first_step"] is None:
                state["first_step"] = now
                meter.recording = True  # from the first streamed step on
            state["last_step"] = now

    def on_finished(run_id: int, status: str, reason: str) -> None:
        meter.recording = False
        state["finished"] = (status, reason)
        panel.finish(run_id, status, reason)

    controller.run_started.connect(panel.begin)
    controller.events.connect(on_events)
    controller.run_finished.connect(on_finished)
    controller.start(spec)
    spin(app, lambda: state["finished"] is not None, 600)
    meter.stop()
    controller.shutdown()
    panel.close()
    streamed_s = (state["last_step"] or 0.0) - (state["first_step"] or 0.0)
    return {
        **lag_figures(meter.lags_ms),
        "status": state["finished"][0] if state["finished"] else "timed out",
        "source": "real training job: small_cnn, sample:shapes, batch 32, CPU, child process "
        "through JobController" + ("" if draw else "; events not drawn"),
        "streamed_s": round(streamed_s, 2),
        "steps": counts["steps"],
        "steps_per_s": round(counts["steps"] / streamed_s, 1) if streamed_s > 0 else None,
        "event_batches": counts["batches"],
        "events": counts["events"],
        "loss_points_drawn": panel.loss_chart.points("train (step)"),
    }


# ----------------------------------------------------------------------------- lag: replay


def replay_lag(app: Any, db: Path, steps_per_s: float, seconds: float) -> dict[str, Any]:
    """A synthetic run at ``steps_per_s``, delivered in 10 Hz batches, with two GPUs."""
    from cnn_lab.engine.train.events import EpochEnd, StepEnd, StepTiming, SystemSampled

    panel = new_panel(db)
    panel.begin(1)
    meter = LagMeter()
    batch_every = 0.1
    per_batch = max(1, round(steps_per_s * batch_every))
    steps_per_epoch = 5000
    state = {"step": 0, "t": 0.0, "batches": 0}
    gpu_keys = ("util_percent", "mem_used_mb", "mem_total_mb", "temp_c", "power_w")

    def batch() -> None:
        events: list[Any] = []
        for _ in range(per_batch):
            state["step"] += 1
            n = state["step"]
            epoch = 1 + (n - 1) // steps_per_epoch
            events.append(
                StepEnd(n, epoch, 2.0 / math.sqrt(n), 0.01, 30000.0, n / steps_per_s, 0.5, 60.0)
            )
            if n % steps_per_epoch == 0:
                events.append(EpochEnd(epoch, n, 0.5, 0.8, 0.6, 0.75, 2.0, 30000.0, 0.2))
        state["t"] += batch_every
        if state["batches"] % 5 == 0:  # 2 Hz, like the job's sampler
            values = {"cpu.percent": 50.0, "ram.used_mb": 8000.0, "ram.percent": 50.0}
            values |= {f"cpu.core{i}.percent": 50.0 for i in range(16)}
            values |= {f"gpu{g}.{k}": 80.0 + g for g in range(2) for k in gpu_keys}
            events.append(SystemSampled(state["t"], values))
        if state["batches"] % 10 == 0:
            events.append(StepTiming(state["step"], 50, 1.0, 0.5, 30.0, 0.5, 32.0, 30000.0, 1024))
        state["batches"] += 1
        panel.on_events(1, events)

    from PySide6.QtCore import QTimer

    feeder = QTimer()
    feeder.setInterval(int(batch_every * 1000))
    feeder.timeout.connect(batch)
    meter.recording = True
    feeder.start()
    spin(app, lambda: False, seconds)
    feeder.stop()
    meter.stop()
    points = panel.loss_chart.points("train (step)")
    panel.close()
    return {
        **lag_figures(meter.lags_ms),
        "source": f"replayed synthetic stream: {steps_per_s:.0f} steps/s in 10 Hz batches, "
        "system samples with 2 GPUs at 2 Hz",
        "seconds": seconds,
        "steps": state["step"],
        "loss_points_drawn": points,
    }


# ----------------------------------------------------------------------------- redraw


def redraw_times(app: Any, repeat: int) -> dict[str, Any]:
    import numpy as np
    import pyqtgraph as pg

    from cnn_lab.app.widgets.charts import LiveChart

    rng = np.random.default_rng(0)
    xs = np.arange(POINTS, dtype=np.float64)
    ys = 2.0 * np.exp(-xs / 2e5) + 0.05 * rng.standard_normal(POINTS)

    chart = LiveChart("Loss", y_label="cross-entropy")
    chart.resize(640, 400)
    chart.show()
    plain = pg.PlotWidget(title="Loss")
    plain.resize(640, 400)
    plain.show()
    plain_curve = plain.plot(pen=pg.mkPen("#1f77b4", width=2))
    app.processEvents()

    def ours() -> float:
        t0 = time.perf_counter()
        chart.set("train", xs, ys)
        chart.grab()
        return time.perf_counter() - t0

    def baseline() -> float:
        t0 = time.perf_counter()
        plain_curve.setData(xs, ys)
        plain.grab()
        return time.perf_counter() - t0

    def live_batch() -> float:
        # the steady state of a long run: one 10 Hz batch appended to a full curve, repainted
        t0 = time.perf_counter()
        chart.append("train", xs[-100:] + POINTS, ys[-100:])
        chart.grab()
        return time.perf_counter() - t0

    ours(), baseline()  # warm-up: first paints build caches and fonts
    ours_s = statistics.median(ours() for _ in range(repeat))
    base_s = statistics.median(baseline() for _ in range(max(1, repeat // 2)))
    chart.set("train", xs, ys)
    live_s = statistics.median(live_batch() for _ in range(repeat))
    return {
        "points": POINTS,
        "livechart_set_and_paint_ms": round(ours_s * 1000, 1),
        "live_batch_append_and_paint_ms": round(live_s * 1000, 1),
        "baseline_plain_plotdataitem_ms": round(base_s * 1000, 1),
        "ratio_baseline_over_livechart": round(base_s / ours_s, 1),
        "repeat": repeat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the real run")
    parser.add_argument("--limit", type=int, default=3000, help="images of the real run")
    parser.add_argument("--replay-steps-per-s", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="idle and replay length")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-real-run", action="store_true")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    result: dict[str, Any] = {"benchmark": "ui_latency", "tick_ms": TICK_MS}
    with tempfile.TemporaryDirectory() as tmp:
        result["redraw_1m_points"] = redraw_times(app, args.repeat)
        result["lag_idle_baseline"] = idle_lag(app, Path(tmp) / "idle.sqlite", args.seconds)
        result["lag_replay"] = replay_lag(
            app, Path(tmp) / "replay.sqlite", args.replay_steps_per_s, args.seconds
        )
        if not args.skip_real_run:
            result["lag_real_run"] = real_run_lag(
                app, Path(tmp) / "run.sqlite", args.epochs, args.limit, draw=True
            )
            result["lag_real_run_undrawn_baseline"] = real_run_lag(
                app, Path(tmp) / "run2.sqlite", args.epochs, args.limit, draw=False
            )
    result["cpu_cores"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
