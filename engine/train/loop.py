"""The training loop, as a generator of events.

Read it top to bottom: prepare data and model, then epochs of steps, each step reporting a
StepEnd, each epoch an EpochEnd, and one RunFinished at the end whatever happens. It knows
nothing of databases, pipes or windows; engine/jobs.py stores and forwards what it yields.
Stopping is cooperative: ``should_stop`` is polled after every step, so a stop takes one
step, not one epoch.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnn_lab.engine.data.loader import BatchLoader
from cnn_lab.engine.data.training_data import build_training_data
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models.trained import save_weights
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.devices import describe_device, resolve_device
from cnn_lab.engine.train.events import (
    EpochEnd,
    Event,
    RunFinished,
    RunStarted,
    StepEnd,
    WeightsSaved,
)
from cnn_lab.engine.train.optimizers import build_optimizer
from cnn_lab.engine.train.schedules import build_schedule

# A run is failed after this many non-finite losses in a row: one can be a fluke of a
# large batch; several mean the weights have diverged.
MAX_BAD_STEPS = 3


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class _Totals:
    """Running sums for one epoch, kept on the device to avoid a sync per step."""

    loss: torch.Tensor
    correct: torch.Tensor
    seen: int = 0


def evaluate(
    model: nn.Module,
    loader: BatchLoader,
    should_stop: Callable[[], bool],
) -> tuple[float, float]:
    """Mean loss and accuracy on a split; returns NaNs if stopped half-way."""
    model.eval()
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    with torch.inference_mode():
        for batch in loader:
            logits = model(batch.x)
            loss_sum += nn.functional.cross_entropy(logits, batch.labels, reduction="sum")
            correct += (logits.argmax(1) == batch.labels).sum()
            if should_stop():
                return math.nan, math.nan
    model.train()
    n = max(loader.images_count, 1)
    return float(loss_sum) / n, float(correct) / n


def train_events(
    spec: RunSpec,
    *,
    run_id: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    weights_path: str | Path | None = None,
) -> Iterator[Event]:
    """Train ``spec`` and yield what happens. The last event is always a RunFinished.

    With ``weights_path``, the final weights of a run that trained at least one step and did
    not diverge are saved there (safetensors) and announced with a WeightsSaved event.
    """
    t = spec.train
    seed_everything(t.seed)
    device = resolve_device(t.device)

    data = build_training_data(
        spec.dataset,
        device=device,
        batch_size=t.batch_size,
        seed=t.seed,
        channels_last=t.channels_last,
        should_stop=should_stop,
    )
    train, val, prepared = data.train, data.val, data.prepared
    _, height, width, channels = prepared.images.shape

    shape = InputShape(channels=channels, height=height, width=width, classes=len(prepared.classes))
    model = build_model(spec.architecture, shape).to(device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model.parameters(), t)
    params = sum(p.numel() for p in model.parameters())

    steps_per_epoch = len(train)
    total_steps = steps_per_epoch * t.epochs
    if t.max_steps is not None:
        total_steps = min(total_steps, t.max_steps)
    schedule = build_schedule(optimizer, t, total_steps)
    yield RunStarted(
        run_id=run_id,
        device=describe_device(device),
        epochs=t.epochs,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        train_images=train.images_count,
        val_images=val.images_count,
        classes=tuple(prepared.classes),
        params=params,
    )

    step = 0
    bad_steps = 0
    best_val_acc = -1.0
    last_train_loss = math.nan
    train_time = 0.0
    trained_images = 0
    epochs_done = 0
    started = time.perf_counter()
    status, reason, hint = st.COMPLETED, None, None
    model.train()

    for epoch in range(1, t.epochs + 1):
        epoch_start = time.perf_counter()
        epoch_train_time = 0.0
        totals = _Totals(
            torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)
        )
        for batch in train:
            step_start = time.perf_counter()
            x, y = batch.x, batch.labels
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, batch.targets, weight=data.loss_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            schedule.step()
            # .item() synchronises; one per step is the price of a live per-step curve.
            loss_value = loss.item()
            step_s = time.perf_counter() - step_start
            step += 1
            epoch_train_time += step_s
            trained_images += len(y)
            totals.loss += loss.detach() * len(y)
            totals.correct += (logits.detach().argmax(1) == y).sum()
            totals.seen += len(y)

            if math.isfinite(loss_value):
                bad_steps = 0
                last_train_loss = loss_value
            else:
                bad_steps += 1

            elapsed = time.perf_counter() - started
            rate = (train_time + epoch_train_time) / step
            yield StepEnd(
                step=step,
                epoch=epoch,
                loss=loss_value,
                lr=lr,
                images_per_s=len(y) / step_s if step_s > 0 else 0.0,
                elapsed_s=elapsed,
                progress=step / total_steps,
                eta_s=rate * (total_steps - step),
            )
            if bad_steps >= MAX_BAD_STEPS:
                status = st.FAILED
                reason = f"The loss became {loss_value} at step {step} and stayed non-finite."
                hint = "Lower the learning rate or the batch size, then train again."
                break
            if should_stop():
                status, reason = st.STOPPED, f"Stopped by request at step {step}."
                break
            if t.max_steps is not None and step >= t.max_steps:
                break

        train_time += epoch_train_time
        if status != st.COMPLETED:
            break
        val_loss, val_acc = evaluate(model, val, should_stop)
        if should_stop():
            status, reason = st.STOPPED, f"Stopped by request during epoch {epoch}'s validation."
            break
        epochs_done = epoch
        best_val_acc = max(best_val_acc, val_acc)
        seen = max(totals.seen, 1)
        yield EpochEnd(
            epoch=epoch,
            step=step,
            train_loss=float(totals.loss) / seen,
            train_accuracy=float(totals.correct) / seen,
            val_loss=val_loss,
            val_accuracy=val_acc,
            epoch_s=time.perf_counter() - epoch_start,
            images_per_s=totals.seen / epoch_train_time if epoch_train_time > 0 else 0.0,
        )
        if t.max_steps is not None and step >= t.max_steps:
            break

    summary = {
        "epochs": epochs_done,
        "steps": step,
        "best_val_accuracy": best_val_acc if best_val_acc >= 0 else None,
        "final_train_loss": last_train_loss if math.isfinite(last_train_loss) else None,
        "train_images_per_s": trained_images / train_time if train_time > 0 else None,
        "train_time_s": train_time,
        "wall_time_s": time.perf_counter() - started,
        "device": describe_device(device),
        "params": params,
        "classes": list(prepared.classes),
        "dataset_key": prepared.report.dataset_key,
    }
    if hasattr(model, "pretrained_report"):
        summary["pretrained"] = model.pretrained_report
    if data.test is not None and status == st.COMPLETED:
        summary["test_loss"], summary["test_accuracy"] = evaluate(model, data.test, should_stop)
    if weights_path is not None and step > 0 and status != st.FAILED:
        try:
            saved = save_weights(model, weights_path, shape, list(prepared.classes))
        except OSError as exc:  # training's result stands; say why there are no weights
            summary["weights_error"] = f"The weights could not be saved: {exc}."
        else:
            yield WeightsSaved(str(saved.path), saved.sha256, saved.bytes)
    yield RunFinished(run_id=run_id, status=status, reason=reason, hint=hint, summary=summary)
