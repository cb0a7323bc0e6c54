"""What cnn-lab's trainer costs on top of the model: ``train_events`` against a bare PyTorch loop.

Both arms train the same network (built by ``build_model`` from the same seed) on the same
images with the same batch size, fp32, channels-last layout, the same optimizer with the same
fused kernels and parameter groups, and the same one-cycle (or chosen) schedule, with no
augmentation, in one process on the same threads.

* cnn-lab: ``train_events`` as a run gets it, with its own data loader (a gather from the
  resident uint8 cache, the cast and the normalisation per batch), its loss/accuracy sums on
  the device, the host's read of each loss (every step on the CPU) and its schedule.
* baseline: the loop a competent person writes, fed pre-normalised float batches that are
  views into one tensor built from cnn-lab's own loader before timing (the same pixels), so it
  has no data cost at all; whatever separates the arms is what the engine adds per step.

On the CPU the two runs go forward in turns of ``--window`` steps, cnn-lab's then the bare
loop's, in one process on the same threads, and each pair of windows is compared. On the
shared 2-core machine other processes slow spells of seconds down; arms that ran one after
the other saw different spells (the same code measured a median of 0.82 to 1.04 that way),
while the two windows of a pair, a fraction of a second apart, see the same. Only windows of
full batches inside one epoch after the first count (no warm-up, no validation: the bare loop
has none). ``ratio_median_window`` is the median of the pairs' ratios (goal: >= 0.97), with
the 10th and 90th percentiles; ``ratio`` compares each arm's best window.

On a GPU the loop reads losses once per logging interval (32 steps), so its StepEnds come in
bursts and a window's stamps say when the host learned of the steps, not when the device
ran them: there the arms run one after the other and whole epochs are compared (each ends in
the epoch's drain, which waits for the device, as the bare loop's epoch-end sync does).

    python benchmarks/engine_overhead.py [--size 32] [--batch-size 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median, quantiles

import torch
import torch.nn.functional as F

from cnn_lab.engine.specs import RunSpec


def make_spec(args: argparse.Namespace) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": args.limit, "image_size": args.size},
            "architecture": {"preset": args.preset},
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "optimizer": args.optimizer,
                "schedule": args.schedule,
                "fused_optimizer": "fused" if args.fused else "off",
                "precision": "fp32",
                "channels_last": True,
                "device": args.device,
                "seed": args.seed,
            },
        }
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Epoch:
    """One timed epoch: ``stamps[0]`` is its start, ``stamps[i]`` the end of step ``i``."""

    stamps: list[float]
    images: int


def rates(epochs: list[Epoch], batch: int, window: int) -> tuple[list[float], list[float]]:
    """Images per second of each whole epoch, and of each window of ``window`` full batches."""
    per_epoch, per_window = [], []
    for e in epochs:
        per_epoch.append(e.images / (e.stamps[-1] - e.stamps[0]))
        full = e.images // batch  # the last, partial batch is left out of the windows
        for k in range(0, full - window + 1, window):
            per_window.append(window * batch / (e.stamps[k + window] - e.stamps[k]))
    return per_epoch, per_window


def optimizer_kernels(spec: RunSpec, device: torch.device) -> str:
    from cnn_lab.engine.train.optimizers import build_optimizer, kernel_mode

    probe = torch.nn.Linear(2, 2).to(device)
    return kernel_mode(build_optimizer(probe.parameters(), spec.train, device))


def bare_batches(spec: RunSpec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The run's training images, normalised and laid out by cnn-lab's loader, as two tensors."""
    from cnn_lab.engine.data.training_data import build_training_data

    data = build_training_data(
        spec.dataset,
        device=device,
        batch_size=spec.train.batch_size,
        seed=spec.train.seed,
        channels_last=True,
    )
    data.train.set_epoch(1)
    xs, ys = [], []
    for batch in data.train:
        xs.append(batch.x)
        ys.append(batch.labels)
    x = torch.cat(xs).contiguous(memory_format=torch.channels_last)
    return x, torch.cat(ys), len(data.prepared.classes)


@dataclass(frozen=True)
class Tick:
    """One arm's progress: a step of ``epoch`` ended (``full``: a whole batch), or, with
    ``step`` False, an epoch ended (for cnn-lab: after its validation)."""

    epoch: int
    step: bool = True
    full: bool = True


def cnn_lab_ticks(spec: RunSpec, batch_size: int) -> Iterator[Tick]:
    """``train_events`` as a run gets it, as ticks (a StepEnd is a step; on the CPU the loop
    reads every step's loss as it ends, so a StepEnd comes right after its step)."""
    from cnn_lab.engine.train.events import EpochEnd, RunFinished, RunStarted, StepEnd
    from cnn_lab.engine.train.loop import train_events

    per_epoch, full = 0, 0
    for event in train_events(spec):
        if isinstance(event, RunStarted):
            per_epoch, full = event.steps_per_epoch, event.train_images // batch_size
        elif isinstance(event, StepEnd):
            yield Tick(event.epoch, full=(event.step - 1) % per_epoch < full)
        elif isinstance(event, EpochEnd):
            yield Tick(event.epoch, step=False)
        elif isinstance(event, RunFinished) and event.status != "completed":
            raise RuntimeError(f"cnn-lab's run ended {event.status}: {event.reason}")


def bare_ticks(
    spec: RunSpec,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    classes: int,
    device: torch.device,
    window: int,
) -> Iterator[Tick]:
    """A hand-written loop over in-memory float batches, as ticks; on a GPU it synchronises
    at each window's end and the epoch's (only those stamps are read)."""
    from cnn_lab.engine.models import InputShape, build_model

    t = spec.train
    torch.manual_seed(t.seed)
    _, channels, height, width = x_all.shape
    shape = InputShape(channels=channels, height=height, width=width, classes=classes)
    model = build_model(spec.architecture, shape).to(device, memory_format=torch.channels_last)
    # The same two groups as cnn-lab's optimizers: no weight decay on biases and norms.
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": t.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    kernels = {"fused": t.fused_optimizer != "off", "foreach": False}
    if t.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov, **kernels)
    elif t.optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=t.lr, **kernels)
    else:
        opt = torch.optim.AdamW(groups, lr=t.lr, **kernels)
    batches = list(zip(x_all.split(t.batch_size), y_all.split(t.batch_size), strict=True))
    total = len(batches) * t.epochs
    if t.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr, total_steps=total)
    elif t.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    model.train()
    for epoch in range(1, t.epochs + 1):
        sync(device)
        for i, (x, y) in enumerate(batches, start=1):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if i % window == 0 or i == len(batches):
                sync(device)
            yield Tick(epoch, full=len(x) == t.batch_size)
        yield Tick(epoch, step=False)


def epochs_of(ticks: Iterator[Tick], train_images: int) -> list[Epoch]:
    """Every epoch after the first, stamped from the previous epoch's end to each step."""
    epochs: list[Epoch] = []
    stamps: list[float] | None = None
    for tick in ticks:
        if tick.step:
            if stamps is not None:
                stamps.append(time.perf_counter())
        else:
            if stamps is not None:
                epochs.append(Epoch(stamps, train_images))
            stamps = [time.perf_counter()]  # the next epoch's work starts here
    return epochs


def timed_window(ticks: Iterator[Tick], steps: int) -> tuple[float, bool] | None:
    """Seconds for the arm's next ``steps`` steps, and whether they count: full batches of one
    epoch after the first, with no epoch end (cnn-lab's validation) among them."""
    start = time.perf_counter()
    done, valid, epochs = 0, True, set()
    while done < steps:
        tick = next(ticks, None)
        if tick is None:
            return None
        epochs.add(tick.epoch)
        valid &= tick.step and tick.full and tick.epoch > 1
        done += tick.step
    return time.perf_counter() - start, valid and len(epochs) == 1


def paired_windows(
    ours: Iterator[Tick], bare: Iterator[Tick], window: int, batch: int
) -> list[tuple[float, float]]:
    """The arms take turns every ``window`` steps: (cnn-lab, bare) images per second of each
    pair of windows. A slow spell on a shared machine hits both windows of a pair alike."""
    pairs = []
    while (a := timed_window(ours, window)) is not None and (
        b := timed_window(bare, window)
    ) is not None:
        if a[1] and b[1]:
            pairs.append((window * batch / a[0], window * batch / b[0]))
    for _ in ours:  # let the run finish (and raise if it failed)
        pass
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--preset", default="small_cnn")
    parser.add_argument("--size", type=int, default=32, help="image side (shapes is 32 natively)")
    parser.add_argument("--limit", type=int, default=3000, help="images (80%% train)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="per run; the first is warm-up")
    parser.add_argument("--window", type=int, default=10, help="steps per timed window")
    parser.add_argument("--optimizer", default="adamw", choices=("adamw", "adam", "sgd"))
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument(
        "--schedule", default="onecycle", choices=("onecycle", "cosine", "constant")
    )
    parser.add_argument("--no-fused", dest="fused", action="store_false")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is warm-up")

    from cnn_lab.engine.train.devices import describe_device, resolve_device

    device = resolve_device(args.device)
    args.device = str(device)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNN_LAB_CACHE", str(Path(tmp) / "cache"))
        spec = make_spec(args)
        x_all, y_all, classes = bare_batches(spec, device)
        if len(x_all) // args.batch_size < args.window:
            parser.error("an epoch has fewer full batches than --window: raise --limit")
        pairs: list[tuple[float, float]] = []
        ours: list[Epoch] = []
        bare: list[Epoch] = []
        for _ in range(args.repeat):
            ours_ticks = cnn_lab_ticks(spec, args.batch_size)
            bare_ticks_ = bare_ticks(spec, x_all, y_all, classes, device, args.window)
            if device.type == "cuda":  # whole epochs, arms one after the other
                ours += epochs_of(ours_ticks, len(x_all))
                bare += epochs_of(bare_ticks_, len(x_all))
            else:
                pairs += paired_windows(ours_ticks, bare_ticks_, args.window, args.batch_size)
    if device.type == "cuda":  # bursts of StepEnds: only whole epochs are timed honestly
        ours_rates, bare_rates = (
            rates(ours, args.batch_size, args.window)[0],
            rates(bare, args.batch_size, args.window)[0],
        )
        pair_ratios = [o / b for o, b in zip(ours_rates, bare_rates, strict=False)]
    else:
        ours_rates, bare_rates = [o for o, _ in pairs], [b for _, b in pairs]
        pair_ratios = [o / b for o, b in pairs]
    print(
        json.dumps(
            {
                "benchmark": "engine_overhead",
                "device": describe_device(device),
                "cnn_lab_images_per_s": round(max(ours_rates)),
                "baseline_bare_loop_images_per_s": round(max(bare_rates)),
                "ratio": round(max(ours_rates) / max(bare_rates), 3),
                "ratio_median_window": round(median(pair_ratios), 3),
                "ratio_windows_p10_p90": [
                    round(quantiles(pair_ratios, n=10)[0], 3),
                    round(quantiles(pair_ratios, n=10)[-1], 3),
                ],
                "windows_per_arm": len(pair_ratios),
                "window_steps": args.window if device.type != "cuda" else "whole epochs",
                "preset": args.preset,
                "image_size": args.size,
                "train_images": len(x_all),
                "batch_size": args.batch_size,
                "optimizer": f"{args.optimizer} ({optimizer_kernels(spec, device)})",
                "schedule": args.schedule,
                "precision": "fp32",
                "channels_last": True,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
