"""How long one epoch of a spec takes here, from a short measured probe.

The Sweep panel multiplies this by the trials and their epochs to say how long a sweep will
take *before* it launches, on the data, model and device the trials will use, instead of
waiting for the first trial. ``cnn-lab tune epoch-time`` prints the same measurement.

A few training steps are timed after a warm-up (compilation, cuDNN autotuning and the
allocator's first growth are not an epoch's typical step), exactly as the speed advisor
times them (probe.py). The validation pass is timed as forward passes in inference mode on
batches of the same shape. Both are scaled to the split's image counts. The dataset is
decoded once (and cached), which the trials then reuse.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.train.options import autocast
from cnn_lab.engine.tune.probe import Probe, _synchronize, measure, prepare

EVAL_BATCHES = 3
"""Forward passes timed for the validation estimate (the median counts)."""


@dataclass(frozen=True)
class EpochTime:
    """One epoch's measured cost on this machine, split into training and validation."""

    train_s: float
    eval_s: float
    images_per_s: float
    train_images: int
    val_images: int
    batch_size: int
    device: str
    setup_s: float = 0.0
    """A run's fixed cost besides its epochs: loading the data, building the model on the
    device and its first (warm-up) steps, as this probe paid them."""

    @property
    def epoch_s(self) -> float:
        return self.train_s + self.eval_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "epoch_s": self.epoch_s}

    def summary_lines(self) -> list[str]:
        return [
            f"One epoch takes about {self.epoch_s:.1f} s on {self.device}: "
            f"{self.train_s:.1f} s training {self.train_images} images "
            f"({self.images_per_s:,.0f} images/s at batch {self.batch_size}), "
            f"{self.eval_s:.1f} s validating {self.val_images}; "
            f"{self.setup_s:.1f} s to set a run up."
        ]


def measure_epoch_time(
    spec: RunSpec,
    *,
    steps: int = 8,
    warmup: int = 3,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> EpochTime:
    """Time ``steps`` training steps and a few forward passes of ``spec``; scale to an epoch."""
    started = time.perf_counter()
    prepared = prepare(
        spec.dataset, should_stop=should_stop, progress=progress, architecture=spec.architecture
    )
    splits = prepared.split(spec.dataset)
    with Probe(spec, prepared=prepared, should_stop=should_stop) as probe:
        progress("timing training steps", 0, 2)
        throughput = measure(probe, warmup=warmup, steps=steps)
        setup_s = time.perf_counter() - started - throughput.step_ms / 1000 * throughput.steps
        progress("timing validation", 1, 2)
        forward_s = _forward_seconds(probe)
    per_image = 1.0 / throughput.images_per_s if throughput.images_per_s > 0 else 0.0
    batch = spec.train.batch_size
    val_batches = -(-len(splits.val) // batch)
    progress("timing validation", 2, 2)
    return EpochTime(
        train_s=per_image * len(splits.train),
        eval_s=forward_s * val_batches,
        images_per_s=throughput.images_per_s,
        train_images=len(splits.train),
        val_images=len(splits.val),
        batch_size=batch,
        device=str(probe.device),
        setup_s=max(0.0, setup_s),
    )


def _forward_seconds(probe: Probe) -> float:
    """The median time of one inference-mode forward pass on a training-shaped batch."""
    batches = probe.batches()
    model = probe.compiled.module
    probe.model.eval()
    times = []
    with torch.inference_mode():
        for _ in range(EVAL_BATCHES + 1):  # the first pass warms up and is not counted
            batch = next(batches)
            start = time.perf_counter()
            with autocast(probe.spec.train, probe.device):
                model(batch.x)
            _synchronize(probe.device)
            times.append(time.perf_counter() - start)
    probe.model.train()
    return statistics.median(times[1:])


__all__ = ["EpochTime", "measure_epoch_time"]
