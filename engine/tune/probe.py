"""Short measured training probes: how the tuners ask the real model, data and device.

Every tuner needs the same thing: the spec's network, optimizer and loader on the spec's
device, and a few optimizer steps taken as the training loop takes them, each timed with the
device synchronised (the loss is read back every step, as the loop does). The prepared
dataset is shared between the probes of one spec, because decoding is the slow part;
everything else is rebuilt per probe, because a probe's options (batch size, layout,
precision, compile, data placement) are what it measures.

A network that starts from published weights is probed as it trains: the weights are
downloaded first (a "Downloading weights" stage of the tuner's progress; building never
downloads), the auto image size and the auto mean and std follow them, and the probe's
network starts from them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from cnn_lab.engine.data.loader import Batch
from cnn_lab.engine.data.prepare import PreparedDataset, prepare_dataset
from cnn_lab.engine.data.training_data import build_training_data
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec, RunSpec
from cnn_lab.engine.train.devices import resolve_device
from cnn_lab.engine.train.loop import optimizer_step, seed_everything
from cnn_lab.engine.train.memory import free_device_memory
from cnn_lab.engine.train.optimizers import build_optimizer
from cnn_lab.engine.train.options import (
    Compiled,
    autocast,
    check_options,
    configure_backends,
    make_scaler,
)

StopFlag = Callable[[], bool]


def prepare(
    dataset: DatasetSpec,
    *,
    should_stop: StopFlag = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    architecture: ArchitectureSpec | None = None,
) -> PreparedDataset:
    """Decode (or load from the cache) the dataset once for all the probes of a tuner.

    ``architecture``: the network probed. Its published weights, if any, are downloaded
    first, and auto sizes the images as they expect, as training does.
    """
    expected = None
    if architecture is not None and architecture.weights:
        from cnn_lab.engine.models.published_weights import expected_preprocessing

        download_weights(architecture, should_stop=should_stop, progress=progress)
        expected = expected_preprocessing(architecture)
    prepared = prepare_dataset(
        dataset, progress=progress, should_stop=should_stop, weights=expected
    )
    prepared.raise_blockers()
    return prepared


def prepared_for(
    spec: RunSpec,
    prepared: PreparedDataset | None,
    *,
    should_stop: StopFlag = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> PreparedDataset:
    """``prepared`` when a caller decoded the data already (a tuner run after another),
    else ``spec``'s data prepared for its network, as every tuner starts."""
    if prepared is not None:
        return prepared
    return prepare(
        spec.dataset, should_stop=should_stop, progress=progress, architecture=spec.architecture
    )


def download_weights(
    architecture: ArchitectureSpec,
    *,
    should_stop: StopFlag = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> None:
    """The network's published weights into torch.hub's cache, if it starts from some.

    Free when cached; otherwise progress is the "Downloading weights" stage, a stop raises
    Cancelled, and a failure is one sentence offering a weights file instead.
    """
    if not architecture.weights:
        return
    from cnn_lab.engine.models.published_weights import ensure_weights

    ensure_weights(architecture, progress, should_stop)


@dataclass(frozen=True)
class StepResult:
    index: int
    """0-based number of the step within this probe."""
    loss: float
    seconds: float
    """Wall time of the whole step, loader included, with the device synchronised."""
    images: int
    lr: float


@dataclass(frozen=True)
class Throughput:
    """What a timed probe measured: the median step, so one hiccup does not decide."""

    images_per_s: float
    step_ms: float
    steps: int
    finite: bool
    """Whether every loss of the probe (warm-up included) was finite."""
    first_step_s: float
    """The first step alone: mostly compilation and cuDNN autotuning when those are on."""

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "images_per_s": self.images_per_s,
            "step_ms": self.step_ms,
            "steps": self.steps,
            "finite": self.finite,
            "first_step_s": self.first_step_s,
        }


class Probe:
    """The spec's model, optimizer and training loader on its device, ready to take steps.

    Built exactly as ``train_events`` builds them (same options, same checks, same seed),
    without checkpoints, evaluation or events: a probe is thrown away after it is measured.
    """

    def __init__(
        self,
        spec: RunSpec,
        *,
        prepared: PreparedDataset | None = None,
        device: torch.device | None = None,
        should_stop: StopFlag = lambda: False,
    ) -> None:
        t = spec.train
        self.spec = spec
        self.should_stop = should_stop
        self.device = device or resolve_device(t.device)
        check_options(t, self.device)
        configure_backends(t, self.device)
        seed_everything(t.seed)
        download_weights(spec.architecture, should_stop=should_stop)  # a no-op once cached
        self.data = build_training_data(
            spec.dataset,
            device=self.device,
            batch_size=t.batch_size,
            seed=t.seed,
            channels_last=t.channels_last,
            placement=t.data_placement,
            should_stop=should_stop,
            prepared=prepared,
            evaluation=False,
            architecture=spec.architecture,  # published weights choose the mean and std
        )
        images = self.data.prepared.images
        _, height, width, channels = images.shape
        self.shape = InputShape(channels, height, width, len(self.data.prepared.classes))
        layout = torch.channels_last if t.channels_last else torch.contiguous_format
        self.model = build_model(spec.architecture, self.shape).to(
            self.device, memory_format=layout
        )
        self.model.train()
        self.compiled = Compiled(self.model, t.compile)
        self.optimizer = build_optimizer(self.model.parameters(), t, self.device)
        self.scaler = make_scaler(t, self.device)
        self._epoch = 0

    @property
    def batch_size(self) -> int:
        return self.spec.train.batch_size

    def batches(self) -> Iterator[Batch]:
        """Training batches without end: epoch after epoch, each reshuffled."""
        while True:
            self._epoch += 1
            self.data.train.set_epoch(self._epoch)
            yield from self.data.train

    def step(self, batch: Batch) -> float:
        """One optimizer step on ``batch``; returns its loss (reading it syncs the device)."""
        t = self.spec.train
        with autocast(t, self.device):
            logits = self.compiled.module(batch.x)
            loss = nn.functional.cross_entropy(
                logits.float(),
                batch.targets,
                weight=self.data.loss_weights,
                label_smoothing=t.label_smoothing,
            )
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        optimizer_step(t, self.model, self.optimizer, self.scaler)
        return float(loss.detach())

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def steps(self, n: int, *, lr: Callable[[int], float] | None = None) -> Iterator[StepResult]:
        """Take ``n`` steps (fewer if stopped), optionally setting the rate before each."""
        batches = self.batches()
        for index in range(n):
            if self.should_stop():
                return
            if lr is not None:
                self.set_lr(lr(index))
            start = time.perf_counter()
            batch = next(batches)
            loss = self.step(batch)
            _synchronize(self.device)
            seconds = time.perf_counter() - start
            rate = float(self.optimizer.param_groups[0]["lr"])
            yield StepResult(index, loss, seconds, len(batch.labels), rate)

    def close(self) -> None:
        """Let go of the model, optimizer and device copies before the next probe."""
        del self.model, self.compiled, self.optimizer, self.data
        free_device_memory(self.device)

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def measure(probe: Probe, *, warmup: int = 3, steps: int = 10) -> Throughput:
    """Images per second of ``probe`` after ``warmup`` steps (compilation, autotuning)."""
    results = list(probe.steps(warmup + steps))
    timed = [r.seconds for r in results[warmup:]] or [r.seconds for r in results]
    if not results:
        return Throughput(0.0, math.inf, 0, False, 0.0)
    median = statistics.median(timed)
    return Throughput(
        images_per_s=probe.batch_size / median if median > 0 else 0.0,
        step_ms=median * 1000.0,
        steps=len(timed),
        finite=all(math.isfinite(r.loss) for r in results),
        first_step_s=results[0].seconds,
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
