"""What cnn-lab's trainer costs on top of the model: ``train_events`` against a bare PyTorch loop.

Both arms train the same network (built by ``build_model`` from the same seed) on the same
images with the same batch size, fp32, channels-last layout, the same optimizer with the same
fused kernels and parameter groups, and the same one-cycle (or chosen) schedule, with no
augmentation, in one process on the same threads.

* cnn-lab: ``train_events`` as a run gets it, with its own data loader (a gather from the
  resident uint8 cache, the cast and the normalisation per batch), its loss/accuracy sums, the
  ``.item()`` behind each live StepEnd, and its schedule.
* baseline: the loop a competent person writes, fed pre-normalised float batches that are
  views into one tensor built from cnn-lab's own loader before timing (the same pixels), so it
  has no data cost at all; whatever separates the arms is what the engine adds per step.

Only steady state counts: the first epoch of every run (allocator, first-touch, kernel
selection) is left out, and so is the validation pass at each epoch's end (the bare loop has
none). For cnn-lab an epoch is timed from the EpochEnd before it to its last StepEnd, so it
includes the loader's per-epoch set-up. Arms are interleaved and repeated ``--repeat`` times.
Every timed epoch is cut into windows of ``--window`` full batches (the bare loop synchronises
the device at each window's end; cnn-lab's StepEnd already has), and each arm's best window is
kept: best of N, as in channels_last.py, at a grain fine enough that other processes on shared
cores, which only ever slow a window down, rarely spoil them all. The best whole epochs and the
median windows are printed too. ``ratio`` = cnn-lab / bare images per second (goal: >= 0.97
on the median window, not only the best).

On a GPU the loop reads losses once per logging interval (32 steps), so its StepEnds come in
bursts and a window's stamps say when the host learned of the steps, not when the device
ran them: there the windows are left out and the whole epochs are compared (each ends in the
epoch's drain, which waits for the device, as the bare loop's epoch-end sync does).

    python benchmarks/engine_overhead.py [--size 32] [--batch-size 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

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


def cnn_lab_arm(spec: RunSpec) -> tuple[list[Epoch], str]:
    """``train_events`` as a run gets it; every epoch after the first is timed.

    An epoch starts at the EpochEnd before it (so its validation is left out) and ends at its
    last StepEnd; each StepEnd has synchronised with the device (its loss is an ``.item()``).
    """
    from cnn_lab.engine.train.events import EpochEnd, RunFinished, RunStarted, StepEnd
    from cnn_lab.engine.train.loop import train_events

    epochs: list[Epoch] = []
    train_images, stamps = 0, None
    summary: dict = {}
    for event in train_events(spec):
        if isinstance(event, StepEnd):
            if stamps is not None:
                stamps.append(time.perf_counter())
        elif isinstance(event, EpochEnd):
            if stamps is not None:
                epochs.append(Epoch(stamps, train_images))
            stamps = [time.perf_counter()]  # the next epoch's work starts here
        elif isinstance(event, RunStarted):
            train_images = event.train_images
        elif isinstance(event, RunFinished):
            if event.status != "completed":
                raise RuntimeError(f"cnn-lab's run ended {event.status}: {event.reason}")
            summary = event.summary
    return epochs, str(summary["device"])


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


def bare_arm(
    spec: RunSpec,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    classes: int,
    device: torch.device,
    window: int,
) -> list[Epoch]:
    """A hand-written loop over in-memory float batches; every epoch after the first is timed."""
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

    epochs: list[Epoch] = []
    model.train()
    for epoch in range(1, t.epochs + 1):
        sync(device)
        stamps = [time.perf_counter()]
        for i, (x, y) in enumerate(batches, start=1):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if i % window == 0 or i == len(batches):  # only these stamps are read
                sync(device)
            stamps.append(time.perf_counter())
        if epoch > 1:  # the first epoch is warm-up
            epochs.append(Epoch(stamps, len(x_all)))
    return epochs


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

    from cnn_lab.engine.train.devices import resolve_device

    device = resolve_device(args.device)
    args.device = str(device)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNN_LAB_CACHE", str(Path(tmp) / "cache"))
        spec = make_spec(args)
        x_all, y_all, classes = bare_batches(spec, device)
        if len(x_all) // args.batch_size < args.window:
            parser.error("an epoch has fewer full batches than --window: raise --limit")
        ours: list[Epoch] = []
        bare: list[Epoch] = []
        where = ""
        for _ in range(args.repeat):  # interleaved so drift in machine load hits both arms
            epochs, where = cnn_lab_arm(spec)
            ours += epochs
            bare += bare_arm(spec, x_all, y_all, classes, device, args.window)
    ours_epoch, ours_window = rates(ours, args.batch_size, args.window)
    bare_epoch, bare_window = rates(bare, args.batch_size, args.window)
    if device.type == "cuda":  # bursts of StepEnds: only whole epochs are timed honestly
        ours_window, bare_window = ours_epoch, bare_epoch
    print(
        json.dumps(
            {
                "benchmark": "engine_overhead",
                "device": where,
                "cnn_lab_images_per_s": round(max(ours_window)),
                "baseline_bare_loop_images_per_s": round(max(bare_window)),
                "ratio": round(max(ours_window) / max(bare_window), 3),
                "ratio_median_window": round(median(ours_window) / median(bare_window), 3),
                "cnn_lab_best_epoch_images_per_s": round(max(ours_epoch)),
                "bare_best_epoch_images_per_s": round(max(bare_epoch)),
                "ratio_best_epoch": round(max(ours_epoch) / max(bare_epoch), 3),
                "windows_per_arm": len(ours_window),
                "window_steps": args.window if device.type != "cuda" else "whole epochs",
                "epochs_timed_per_arm": len(ours),
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
