"""What the Monitor's header and step-time caption say, as plain functions of events and runs.

The live run and a stored one are described by the same functions, so a finished run's header
reads as it did while it trained.
"""

from __future__ import annotations

from typing import Any

from cnn_lab.engine.store import RunRecord
from cnn_lab.engine.util.durations import format_duration


def count_text(n: int) -> str:
    """Parameters as a person says them: 11.2 M, 850 k."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} M"
    if n >= 1_000:
        return f"{n / 1e3:.0f} k"
    return str(n)


def start_text(event: Any) -> str:
    """The device line of a RunStarted: where, how big a batch, what data, how big a net."""
    parts = [str(event.device)]
    if event.batch_size:
        parts.append(f"batch {event.batch_size:,}")
    parts.append(f"{event.train_images:,} train / {event.val_images:,} validation images")
    parts.append(f"{len(event.classes)} classes")
    parts.append(f"{count_text(event.params)} parameters")
    if event.data_on_device:
        parts.append("data on the device")
    return " · ".join(parts)


def stored_device_text(record: RunRecord) -> str:
    """The device line of a stored run: its name, the device and the parameters it recorded."""
    device = record.summary.get("device") or record.device or ""
    params = record.summary.get("params")
    extra = [f"{count_text(int(params))} parameters"] if isinstance(params, int) else []
    return " · ".join([p for p in (record.name, device) if p] + extra)


def progress_text(step: Any, epochs: int | None) -> str:
    """A live step's place in the run: its epoch (of how many, once known), the share done
    and the time left."""
    of = f"/{epochs}" if epochs is not None else ""
    eta = format_duration(step.eta_s, "spoken")
    return f"epoch {step.epoch}{of} · {step.progress:.0%} · ETA {eta}"


def done_text(steps: float, epochs: float | None) -> str:
    """How far an ended run got: "4 epochs · 1,200 steps" (steps alone before a validation)."""
    done = f"{steps:,.0f} steps"
    return f"{epochs:.0f} epochs · {done}" if epochs is not None else done


def timing_caption(total_ms: str, total: float, batch: int, steps: int) -> str:
    """The step-time bar's caption: the step's time, the images per second it means, and how
    many steps the mean is over (a stored run has neither batch nor steps: 0)."""
    parts = [f"{total_ms} per step"]
    if batch and total > 0:
        parts.append(f"{batch * 1000.0 / total:,.0f} images/s")
    if steps:
        parts.append(f"mean of the last {steps:,} steps")
    return " · ".join(parts)


def reason_text(reason: str, hint: str) -> str:
    """Why a run ended and what to do about it, one per line; empty when it just completed."""
    return "\n".join(part for part in (reason, hint) if part)
