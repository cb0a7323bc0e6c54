"""The training loop, as a generator of events.

Read it top to bottom: prepare data, model and recipe (or restore them from a checkpoint),
then epochs of batches. Every optimizer step yields a StepEnd, every epoch an EpochEnd and
the checkpoints it wrote, and one RunFinished comes at the end whatever happens. It knows
nothing of databases, pipes or windows; engine/jobs.py stores and forwards what it yields.
Stopping is cooperative: ``should_stop`` is polled after every optimizer step, so a stop
takes one step, and the run can be resumed from exactly there.
"""

from __future__ import annotations

import math
import os
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
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models.trained import save_weights
from cnn_lab.engine.monitor.step_timing import StepClock
from cnn_lab.engine.specs import RunSpec, TrainSpec
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.device_faults import translate_device_faults
from cnn_lab.engine.train.devices import describe_device, resolve_device
from cnn_lab.engine.train.distributed import DistContext, agree
from cnn_lab.engine.train.ema import WeightEMA
from cnn_lab.engine.train.events import (
    CheckpointSaved,
    EpochEnd,
    Event,
    RunFinished,
    RunStarted,
    StepEnd,
    WeightsSaved,
)
from cnn_lab.engine.train.memory import OutOfMemory, is_out_of_memory, largest_fitting_batch
from cnn_lab.engine.train.optimizers import build_optimizer
from cnn_lab.engine.train.options import (
    Compiled,
    autocast,
    check_options,
    configure_backends,
    make_scaler,
)
from cnn_lab.engine.train.schedules import LRSchedule, build_schedule
from cnn_lab.engine.train.stopping import EarlyStopping

# A run is failed after this many non-finite losses in a row: one can be a fluke of a
# large batch; several mean the weights have diverged.
MAX_BAD_STEPS = 3


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class _Epoch:
    """Running sums for one epoch, kept on the device to avoid a sync per step."""

    loss: torch.Tensor
    correct: torch.Tensor
    seen: int = 0
    train_s: float = 0.0

    @classmethod
    def start(cls, device: torch.device, saved: dict[str, float]) -> _Epoch:
        """Fresh sums, or a resumed half-epoch's."""
        return cls(
            torch.tensor(saved.get("loss", 0.0), device=device),
            torch.tensor(int(saved.get("correct", 0)), device=device),
            int(saved.get("seen", 0)),
            float(saved.get("train_s", 0.0)),
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "loss": float(self.loss),
            "correct": float(self.correct),
            "seen": self.seen,
            "train_s": self.train_s,
        }


def eval_logits(model: nn.Module, x: torch.Tensor, t: TrainSpec) -> torch.Tensor:
    """Logits as evaluation scores them: fp32, and with ``tta_flip`` the log of the mean of
    the image's and its mirror's predicted distributions (call under ``autocast``)."""
    logits = model(x).float()
    if t.tta_flip:
        flipped = model(x.flip(3)).float()
        probs = (logits.softmax(1) + flipped.softmax(1)) / 2
        logits = probs.clamp_min(1e-12).log()
    return logits


def evaluate(
    model: nn.Module,
    loader: BatchLoader,
    t: TrainSpec,
    should_stop: Callable[[], bool],
) -> tuple[float, float]:
    """Mean loss and accuracy on a split; NaNs if stopped half-way.

    With ``tta_flip`` each image is also seen mirrored and the two predicted distributions
    are averaged (a cheap, reliable gain for natural images).
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    loader.set_epoch(0)
    with torch.inference_mode():
        for batch in loader:
            with autocast(t, loader.device):
                logits = eval_logits(model, batch.x, t)
            loss_sum += nn.functional.cross_entropy(logits, batch.labels, reduction="sum")
            correct += (logits.argmax(1) == batch.labels).sum()
            if should_stop():
                model.train(was_training)
                return math.nan, math.nan
    model.train(was_training)
    n = max(loader.images_count, 1)
    return float(loss_sum) / n, float(correct) / n


@translate_device_faults  # a CUDA error that breaks the context fails the run with a sentence
def train_events(
    spec: RunSpec,
    *,
    run_id: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    weights_path: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    dist: DistContext | None = None,
) -> Iterator[Event]:
    """Train ``spec`` and yield what happens. The last event is always a RunFinished.

    With ``checkpoint_dir``, the "last" checkpoint is written after every epoch and when the
    run is stopped, and the "best" one whenever ``monitor`` improves; ``resume`` continues
    from "last". With ``weights_path`` the final weights (the EMA's when there is one) of a run
    that trained and did not diverge are saved there for export and prediction.
    """
    t = spec.train
    dist = dist or DistContext()
    seed_everything(t.seed)
    device = dist.device or resolve_device(t.device)
    check_options(t, device)
    configure_backends(t, device)

    data = build_training_data(
        spec.dataset,
        device=device,
        batch_size=t.batch_size,
        seed=t.seed,
        channels_last=t.channels_last,
        shard=(dist.rank, dist.world_size),
        placement=t.data_placement,
        should_stop=should_stop,
    )
    train, val, prepared = data.train, data.val, data.prepared
    _, height, width, channels = prepared.images.shape
    shape = InputShape(channels=channels, height=height, width=width, classes=len(prepared.classes))
    memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
    model = build_model(spec.architecture, shape).to(device, memory_format=memory_format)
    params = sum(p.numel() for p in model.parameters())
    cost = _model_cost(model, shape)
    ema = WeightEMA(model, t.ema_decay) if t.ema_decay else None
    trained = dist.wrap(model)  # DistributedDataParallel when world_size > 1
    compiled = Compiled(trained, t.compile)
    optimizer = build_optimizer(model.parameters(), t, device)
    scaler = make_scaler(t, device)
    stopping = EarlyStopping(t.monitor, t.early_stopping, t.min_delta)

    batches = len(train)
    steps_per_epoch = math.ceil(batches / t.grad_accumulation)
    total_steps = steps_per_epoch * t.epochs
    if t.max_steps is not None:
        total_steps = min(total_steps, t.max_steps)
    schedule = build_schedule(optimizer, t, total_steps, steps_per_epoch)
    progress = ck.Progress(epoch=1, batch=0, step=0, total_steps=total_steps)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume:
        if folder is None:
            raise UserError("This run cannot be resumed: it was started without checkpoints.")
        progress = _restore(folder, model, optimizer, schedule, scaler, ema, stopping, progress)

    def save(which: str, epoch: int) -> Iterator[CheckpointSaved]:
        if folder is None or not dist.is_main:
            return
        path = ck.checkpoint_path(folder, which)
        try:
            sha, size = ck.save_checkpoint(
                path, _snapshot(progress, model, optimizer, schedule, scaler, ema, stopping)
            )
        except OSError as exc:  # a full disk: the previous checkpoint is intact (atomic save)
            raise UserError(
                f"The {which} checkpoint could not be written: {exc.strerror or exc}.",
                hint="Free some disk space and resume the run; the previous checkpoint is intact.",
            ) from None
        yield CheckpointSaved(which, str(path), sha, size, epoch, progress.step)

    where = describe_device(device) + (f" ×{dist.world_size}" if dist.active else "")
    yield RunStarted(
        run_id=run_id,
        device=where,
        epochs=t.epochs,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        train_images=train.images_count,
        val_images=val.images_count,
        classes=tuple(prepared.classes),
        params=params,
        start_step=progress.step,
        data_on_device=train.resident,
        batch_size=t.batch_size,
        nvml_index=_nvml_index(device),
        augment=data.augment,
        **cost,
    )

    bad_steps = 0
    last_train_loss = math.nan
    started = time.perf_counter()
    status, reason, hint = st.COMPLETED, None, None
    extra: dict[str, object] = {}
    model.train()
    epoch = progress.epoch
    clock = StepClock(device, t.batch_size)
    # cuDNN autotunes on the first batch of each new shape (seen taking 50x a normal step on
    # an H200): like compilation, that is a one-off cost, not the run's speed.
    autotuning = device.type == "cuda" and torch.backends.cudnn.benchmark
    shapes_seen: set[tuple[int, ...]] = set()

    while epoch <= t.epochs and status == st.COMPLETED:
        start_batch = progress.batch if epoch == progress.epoch else 0
        sums = _Epoch.start(device, progress.epoch_totals if start_batch else {})
        train.set_epoch(epoch, start_batch)
        epoch_start = time.perf_counter()
        micro, step_images = 0, 0
        step_loss, step_start = torch.zeros((), device=device), time.perf_counter()
        for index, batch in enumerate(clock.timed(train), start=start_batch):
            x, y = batch.x, batch.labels
            try:
                with autocast(t, device):
                    logits = compiled.module(x)
                    loss = nn.functional.cross_entropy(
                        logits.float(),
                        batch.targets,
                        weight=data.loss_weights,
                        label_smoothing=t.label_smoothing,
                    )
                (scaler.scale(loss) if scaler else loss).div(t.grad_accumulation).backward()
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                logits = loss = None  # let go of the failed step's activations first
                status, reason, hint, fits = _out_of_memory(t, compiled.module, optimizer, batch)
                extra["suggested_batch_size"] = fits
                break
            micro += 1
            step_images += len(y)
            step_loss += loss.detach()
            sums.loss += loss.detach() * len(y)
            sums.correct += (logits.detach().argmax(1) == y).sum()
            sums.seen += len(y)
            if micro < t.grad_accumulation and index + 1 < batches:
                continue
            optimizer_step(t, model, optimizer, scaler)
            schedule.step_batch()
            if ema is not None:
                ema.update()
            loss_value = step_loss.item() / micro  # .item() syncs: the price of a live curve
            step_s = time.perf_counter() - step_start
            progress.step += 1
            progress.batch = index + 1
            shape_key = tuple(x.shape)
            compiling = compiled.was_compiling(step_s, shape_key)
            first_of_shape = shape_key not in shapes_seen
            shapes_seen.add(shape_key)
            clock.step_done(step_images, discard=compiling or (autotuning and first_of_shape))
            if compiling:
                step_s = 0.0  # compile time is reported apart, not as training time
            sums.train_s += step_s
            progress.trained_images += step_images
            if math.isfinite(loss_value):
                bad_steps, last_train_loss = 0, loss_value
            else:
                bad_steps += 1
            elapsed = time.perf_counter() - started
            rate = (progress.train_time_s + sums.train_s) / max(progress.step, 1)
            yield StepEnd(
                step=progress.step,
                epoch=epoch,
                loss=loss_value,
                lr=schedule.lr,
                images_per_s=step_images / step_s if step_s > 0 else 0.0,
                elapsed_s=elapsed,
                progress=progress.step / total_steps,
                eta_s=rate * (total_steps - progress.step),
            )
            if clock.due() and (timing := clock.report(progress.step)) is not None:
                yield timing
            micro, step_images = 0, 0
            step_loss, step_start = torch.zeros((), device=device), time.perf_counter()
            if agree(dist, bad_steps >= MAX_BAD_STEPS):
                status = st.FAILED
                reason = (
                    f"The loss became {loss_value} at step {progress.step} and stayed non-finite."
                )
                hint = "Lower the learning rate, or add gradient clipping, then train again."
                if folder is not None and ck.checkpoint_path(folder, ck.LAST).exists():
                    hint += " The last good checkpoint (end of the previous epoch) is kept."
                break
            if agree(dist, should_stop()):
                status = st.STOPPED
                reason = f"Stopped by request at step {progress.step}" + (
                    "; it can be resumed." if folder is not None else "."
                )
                progress.epoch, progress.epoch_totals = epoch, sums.as_dict()
                yield from save(ck.LAST, epoch)
                break
            if t.max_steps is not None and progress.step >= t.max_steps:
                break
        timing = clock.report(progress.step)
        if timing is not None:
            yield timing
        if status != st.COMPLETED:
            break

        evaluated = ema.module if ema is not None else model
        eval_start = time.perf_counter()
        val_loss, val_acc = evaluate(evaluated, val, t, should_stop)
        eval_s = time.perf_counter() - eval_start
        if agree(dist, should_stop()):
            status, reason = st.STOPPED, f"Stopped by request during epoch {epoch}'s validation."
            # Saved at the end of the epoch's batches, so a resume validates this epoch again
            # rather than skipping its validation, schedule step and early-stopping check.
            progress.epoch, progress.batch, progress.epoch_totals = epoch, batches, sums.as_dict()
            yield from save(ck.LAST, epoch)
            break
        progress.train_time_s += sums.train_s
        metrics = {"val.accuracy": val_acc, "val.loss": val_loss}
        if math.isfinite(val_acc):
            progress.best_val_accuracy = max(progress.best_val_accuracy or 0.0, val_acc)
        schedule.step_epoch(metrics)
        stop_early = stopping.update(metrics)
        progress.epochs_done = epoch
        progress.epoch, progress.batch, progress.epoch_totals = epoch + 1, 0, {}
        seen = max(sums.seen, 1)
        yield EpochEnd(
            epoch=epoch,
            step=progress.step,
            train_loss=float(sums.loss) / seen,
            train_accuracy=float(sums.correct) / seen,
            val_loss=val_loss,
            val_accuracy=val_acc,
            epoch_s=time.perf_counter() - epoch_start,
            images_per_s=sums.seen / sums.train_s if sums.train_s > 0 else 0.0,
            eval_s=eval_s,
        )
        if stopping.improved:
            yield from save(ck.BEST, epoch)
        yield from save(ck.LAST, epoch)
        if stop_early:
            reason = (
                f"Stopped early after epoch {epoch}: {t.monitor} did not improve for "
                f"{t.early_stopping} epochs (best {stopping.best:.4g} at epoch "
                f"{stopping.best_epoch})."
            )
            extra["early_stopped_epoch"] = epoch
            break
        if t.max_steps is not None and progress.step >= t.max_steps:
            break
        epoch += 1

    final = ema.module if ema is not None else model
    summary: dict[str, object] = {
        "epochs": progress.epochs_done,
        "steps": progress.step,
        "best_val_accuracy": progress.best_val_accuracy,
        "best_epoch": stopping.best_epoch,
        "final_train_loss": last_train_loss if math.isfinite(last_train_loss) else None,
        "train_images_per_s": (
            progress.trained_images / progress.train_time_s if progress.train_time_s > 0 else None
        ),
        "train_time_s": progress.train_time_s,
        "compile_s": compiled.compile_s if t.compile else None,
        "wall_time_s": time.perf_counter() - started,
        "device": where,
        "params": params,
        "classes": list(prepared.classes),
        "dataset_key": prepared.report.dataset_key,
        **extra,
    }
    if hasattr(model, "pretrained_report"):
        summary["pretrained"] = model.pretrained_report
    if data.test is not None and status == st.COMPLETED:
        summary["test_loss"], summary["test_accuracy"] = evaluate(final, data.test, t, should_stop)
    if weights_path is not None and dist.is_main and progress.step > 0 and status != st.FAILED:
        try:
            saved = save_weights(final, weights_path, shape, list(prepared.classes))
        except OSError as exc:  # training's result stands; say why there are no weights
            summary["weights_error"] = f"The weights could not be saved: {exc}."
        else:
            yield WeightsSaved(str(saved.path), saved.sha256, saved.bytes)
    yield RunFinished(run_id=run_id, status=status, reason=reason, hint=hint, summary=summary)


def _model_cost(model: nn.Module, shape: InputShape) -> dict[str, int]:
    """Multiply-adds and activation bytes per image, for the bandwidth side of the diagnosis.

    Measured on a meta-device twin (no memory, no real compute); a network the summary cannot
    trace simply goes without, it never stops the run.
    """
    from cnn_lab.engine.models.summary import summarize

    try:
        summary = summarize(model, (shape.channels, shape.height, shape.width))
    except Exception:  # a diagnosis aid only: never fail a run for it
        return {}
    return {"macs_per_image": summary.macs, "activation_bytes_per_image": summary.activation_bytes}


def _nvml_index(device: torch.device) -> int | None:
    """NVML's number for a CUDA device (None on other devices or without NVML)."""
    if device.type != "cuda":
        return None
    from cnn_lab.engine.monitor.nvml import nvml_index_for_uuid

    uuid = str(getattr(torch.cuda.get_device_properties(device), "uuid", ""))
    found = nvml_index_for_uuid(uuid)
    if found is None and "CUDA_VISIBLE_DEVICES" not in os.environ:
        return device.index or 0  # without remapping the two numberings agree
    return found


def _out_of_memory(
    t: TrainSpec, model: nn.Module, optimizer: torch.optim.Optimizer, batch: object
) -> tuple[str, str, str, int | None]:
    """A failure that says which batch size fits, found by probing halved batches."""
    optimizer.zero_grad(set_to_none=True)
    x, targets = batch.x, batch.targets  # type: ignore[attr-defined]
    error = OutOfMemory(x.device, t.batch_size)

    def try_batch(n: int) -> None:
        try:
            with autocast(t, x.device):
                nn.functional.cross_entropy(model(x[:n]).float(), targets[:n]).backward()
        finally:
            optimizer.zero_grad(set_to_none=True)

    fits = largest_fitting_batch(try_batch, len(x), x.device)
    if fits is None:
        return st.FAILED, error.message, "Not even one image fits: use a smaller model.", None
    per_step = fits * max(t.world_size, 1)
    hint = (
        f"Batch size {per_step} fits: retry with it (and grad accumulation "
        f"{math.ceil(t.batch_size / per_step)} to keep the effective batch)."
    )
    return st.FAILED, error.message, hint, per_step


def optimizer_step(
    t: TrainSpec,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
) -> None:
    """One update: unscale (fp16), clip, step, and clear the gradients."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    if t.grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _snapshot(
    progress: ck.Progress,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: torch.amp.GradScaler | None,
    ema: WeightEMA | None,
    stopping: EarlyStopping,
) -> ck.Checkpoint:
    rng_tensors, rng_plain = ck.rng_state()
    extra_tensors = {"rng": rng_tensors}
    if ema is not None:
        extra_tensors["ema"] = ema.state_dict()
    return ck.Checkpoint(
        progress=progress,
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        extra_tensors=extra_tensors,
        extra_json={
            "schedule": schedule.state_dict(),
            "stopping": stopping.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_plain,
        },
    )


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each optimizer state tensor its parameter's memory layout.

    Checkpoints store plain row-major tensors, but a channels-last model's weights are not,
    and fused optimizer kernels walk a parameter and its moments as flat memory: a moment in
    another layout would be updated element-for-wrong-element.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _restore(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: torch.amp.GradScaler | None,
    ema: WeightEMA | None,
    stopping: EarlyStopping,
    fresh: ck.Progress,
) -> ck.Progress:
    """Load the "last" checkpoint into everything; returns where to continue."""
    path = ck.checkpoint_path(folder, ck.LAST)
    if not path.exists():
        raise UserError(
            "This run has no checkpoint to resume from.",
            hint="A checkpoint is written after each epoch and when a run is stopped.",
        )
    saved = ck.load_checkpoint(path)
    try:
        model.load_state_dict(saved.model)
        optimizer.load_state_dict(saved.optimizer)
        _match_layouts(optimizer)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise UserError(
            f"The checkpoint does not fit this run's network or optimizer: {exc}".split("\n")[0],
            hint="Resume with the spec the run was started with.",
        ) from None
    progress = saved.progress
    # The schedule keeps its step count and plateau reductions; its length is this run's, so
    # resuming with more epochs stretches the rest of the schedule over them.
    schedule.load_state_dict(saved.extra_json["schedule"])
    progress.total_steps = fresh.total_steps
    if scaler is not None and saved.extra_json.get("scaler"):
        scaler.load_state_dict(saved.extra_json["scaler"])
    if ema is not None and "ema" in saved.extra_tensors:
        ema.load_state_dict(saved.extra_tensors["ema"])
    stopping.load_state_dict(saved.extra_json["stopping"])
    ck.set_rng_state(saved.extra_tensors["rng"], saved.extra_json["rng"])
    return progress
