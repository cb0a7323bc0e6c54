"""What a job stores for each training event: metrics through the batched writer, the rest in
the run store.

``METRIC_FIELDS`` is the one map from an event to its stored metric keys ("train.loss" is
``StepEnd.loss``, "time.step_ms" is ``StepTiming.step_ms``, …); ``stored_metrics`` applies it.
Anything that needs to know which event field a stored curve comes from reads it here.

``RunRecorder.record`` looks each event's kind up in ``_RECORDERS``: one small function per
kind, and kinds not listed (system samples, which the sampler stores itself; the bottleneck
verdict; the finish, which the job records as the run's end) store nothing here.

Imports neither torch nor Qt at import time (events are matched by their ``kind``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cnn_lab.engine.store import BatchedWriter, RunRepository, artifact_kinds

METRIC_FIELDS: Mapping[str, Mapping[str, str]] = {
    "step": {  # StepEnd, every optimizer step
        "train.loss": "loss",
        "lr": "lr",
        "train.images_per_s": "images_per_s",
    },
    "epoch": {  # EpochEnd, after the epoch's validation
        "epoch.train_loss": "train_loss",
        "epoch.train_accuracy": "train_accuracy",
        "val.loss": "val_loss",
        "val.accuracy": "val_accuracy",
        "epoch.seconds": "epoch_s",
        "epoch.images_per_s": "images_per_s",
        "epoch.eval_s": "eval_s",
    },
    "timing": {  # StepTiming, means over the last few steps
        "time.data_ms": "data_ms",
        "time.copy_ms": "copy_ms",
        "time.compute_ms": "compute_ms",
        "time.other_ms": "other_ms",
        "time.step_ms": "step_ms",
    },
}
"""Event kind -> {stored metric key: the event's field it holds}."""


def stored_metrics(event: Any) -> dict[str, float]:
    """The metrics a job stores for ``event``, by key; empty for an event that stores none."""
    fields = METRIC_FIELDS.get(getattr(event, "kind", ""), {})
    return {key: getattr(event, name) for key, name in fields.items()}


class RunRecorder:
    """Stores one run's training events as they come, in the order the loop yields them."""

    def __init__(self, store: RunRepository, run_id: int, writer: BatchedWriter) -> None:
        self.store = store
        self.run_id = run_id
        self.writer = writer
        self.epoch = 1
        """The last step's epoch: a timing event carries none and is stored under it."""

    def record(self, event: Any) -> None:
        store_it = _RECORDERS.get(getattr(event, "kind", ""))
        if store_it is not None:
            store_it(self, event)

    def _step(self, event: Any) -> None:
        self.epoch = event.epoch
        self.writer.metrics(event.step, event.epoch, stored_metrics(event))

    def _epoch(self, event: Any) -> None:
        self.writer.metrics(event.step, event.epoch, stored_metrics(event))

    def _timing(self, event: Any) -> None:
        self.writer.metrics(event.step, self.epoch, stored_metrics(event))

    def _started(self, event: Any) -> None:
        from cnn_lab.engine.train.devices import environment  # loads torch: the child only

        if event.start_step:  # resumed: what was logged after the checkpoint repeats
            self.store.truncate_metrics(self.run_id, event.start_step)
        self.store.update_summary(
            self.run_id,
            {
                "device": event.device,
                "params": event.params,
                "total_steps": event.total_steps,
                "classes": list(event.classes),
                "environment": environment(),
                # What the images were prepared at (auto chooses from the data): evaluate,
                # predict, reports and resume rebuild this input, not today's auto choice.
                "input_shape": list(event.input_shape),
                "preprocess": event.preprocess,
            },
        )

    def _checkpoint(self, event: Any) -> None:
        self.writer.flush()  # the metrics up to the checkpoint are on disk with it
        self.store.set_artifact(
            self.run_id,
            path=event.path,
            kind=artifact_kinds.checkpoint_kind(event.which),
            sha256=event.sha256,
            bytes=event.bytes,
        )

    def _weights(self, event: Any) -> None:
        # Set, not added: a resumed run's weights replace its earlier ones (only the newest
        # was ever loaded), and a call made twice after a lost connection stays one row.
        self.store.set_artifact(
            self.run_id,
            path=event.path,
            kind=artifact_kinds.WEIGHTS,
            sha256=event.sha256,
            bytes=event.bytes,
        )


_RECORDERS: dict[str, Callable[[RunRecorder, Any], None]] = {
    "step": RunRecorder._step,
    "epoch": RunRecorder._epoch,
    "timing": RunRecorder._timing,
    "started": RunRecorder._started,
    "checkpoint": RunRecorder._checkpoint,
    "weights": RunRecorder._weights,
}
"""Event kind -> how the job stores it."""
