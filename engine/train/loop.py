"""The training loop, as a generator of events.

Read it top to bottom: ``train_events`` prepares data, model and train state (or restores
them from a checkpoint), announces the run, trains epoch after epoch, and always ends with
one RunFinished. An epoch is a run of optimizer steps (engine/train/step.py: micro-batches
forward and backward, one update), then validation and checkpoints. How a run ends is a
value: a stop, a divergence or an out-of-memory error raises an outcome
(engine/train/outcomes.py) that the end of ``train_events`` turns into the RunFinished.

The host never waits for the device in the steady state: losses and accuracy sums stay on
the device, and the losses reach the host once per logging interval (engine/train/step_log.py;
every step on the CPU, where reading one costs nothing). A non-finite loss is therefore
noticed at most one interval (two on a GPU) after ``MAX_BAD_STEPS`` bad steps. Stopping is
cooperative: ``should_stop`` is polled after every optimizer step (every ``AGREE_EVERY``
steps under DDP, where the ranks agree in one small all-reduce), so a stop takes one step and
the run can be resumed from exactly there. The loop knows nothing of databases, pipes or
windows; engine/jobs/job.py stores and forwards what it yields.
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

from cnn_lab.engine.data.loader import Batch
from cnn_lab.engine.data.training_data import TrainingData, build_training_data
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models.trained import save_weights
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.specs.train import fine_tuning
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.accounting import Accounting
from cnn_lab.engine.train.device_faults import translate_device_faults
from cnn_lab.engine.train.devices import describe_device, model_cost, nvml_index, resolve_device
from cnn_lab.engine.train.distributed import DistContext, agree, agree_flags
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
from cnn_lab.engine.train.fine_tune import PhasedSchedule
from cnn_lab.engine.train.fine_tune import set_up as set_up_fine_tuning
from cnn_lab.engine.train.fine_tune_plan import phase_lines
from cnn_lab.engine.train.memory import is_out_of_memory, probe_out_of_memory
from cnn_lab.engine.train.optimizers import build_optimizer
from cnn_lab.engine.train.options import (
    Compiled,
    check_options,
    configured_backends,
    make_scaler,
    nondeterministic_op,
)
from cnn_lab.engine.train.outcomes import Completed, Diverged, RanOutOfMemory, RunEnded, Stopped
from cnn_lab.engine.train.schedules import LRSchedule, build_schedule
from cnn_lab.engine.train.state import TrainState
from cnn_lab.engine.train.step import Windows, optimizer_step, train_step
from cnn_lab.engine.train.step_log import LoggedStep, StepLog
from cnn_lab.engine.train.step_timing import StepClock
from cnn_lab.engine.train.stopping import EarlyStopping
from cnn_lab.engine.train.validation import eval_logits, evaluate

__all__ = [
    "MAX_BAD_STEPS",
    "eval_logits",
    "evaluate",
    "optimizer_step",
    "seed_everything",
    "train_events",
]

# A run is failed after this many non-finite losses in a row: one can be a fluke of a
# large batch; several mean the weights have diverged.
MAX_BAD_STEPS = 3
AGREE_EVERY = 16
"""Steps between the data-parallel ranks' agreements on stopping (one all-reduce)."""


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
    log_every: int | None = None,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> Iterator[Event]:
    """Train ``spec`` and yield what happens. The last event is always a RunFinished.

    With ``checkpoint_dir``, the "last" checkpoint is written after every epoch and when the
    run is stopped, and the "best" one whenever ``monitor`` improves; ``resume`` continues
    from "last". With ``weights_path`` the final weights (the EMA's when there is one) of a run
    that trained and did not diverge are saved there for export and prediction.
    ``log_every`` is the logging interval in steps (default: every step on the CPU, 32 on a
    GPU); every step still gets its StepEnd, in order, when its loss reaches the host.
    ``progress(stage, done, total)`` hears the data preparation (listing, decoding into the
    cache) that comes before the first event.
    """
    t = spec.train
    dist = dist or DistContext()
    seed_everything(t.seed)
    device = dist.device or resolve_device(t.device)
    check_options(t, device)
    with configured_backends(t, device):
        run = _Run(spec, device, dist, should_stop, checkpoint_dir, log_every, progress)
        if resume:
            run.resume()
        yield run.started(run_id)
        try:
            yield from run.epochs()
            ended: RunEnded = Completed()
        except RunEnded as outcome:
            ended = outcome
        yield from run.finish(ended, run_id, weights_path)


class _Run:
    """One run's parts and the steps of its loop, each a method that reads top to bottom."""

    def __init__(
        self,
        spec: RunSpec,
        device: torch.device,
        dist: DistContext,
        should_stop: Callable[[], bool],
        checkpoint_dir: str | Path | None,
        log_every: int | None,
        progress: Callable[[str, int, int], None],
    ) -> None:
        t = self.t = spec.train
        recipe = fine_tuning(spec)  # head first, then all layers (pretrained weights)
        if recipe.problem:
            raise UserError(recipe.problem)
        self.device, self.dist, self.should_stop = device, dist, should_stop
        self.folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.data: TrainingData = build_training_data(
            spec.dataset,
            device=device,
            batch_size=t.batch_size,
            seed=t.seed,
            channels_last=t.channels_last,
            shard=(dist.rank, dist.world_size),
            placement=t.data_placement,
            should_stop=should_stop,
            progress=progress,
            architecture=spec.architecture,  # published weights choose size, mean and std
        )
        prepared = self.data.prepared
        _, height, width, channels = prepared.images.shape
        self.shape = InputShape(
            channels=channels, height=height, width=width, classes=len(prepared.classes)
        )
        layout = torch.channels_last if t.channels_last else torch.contiguous_format
        model = build_model(spec.architecture, self.shape).to(device, memory_format=layout)
        self.cost = model_cost(model, self.shape)
        self.params = sum(p.numel() for p in model.parameters())
        trained = dist.wrap(model)  # DistributedDataParallel when world_size > 1
        self.ddp = trained if dist.active else None
        self.compiled = Compiled(trained, t.compile)

        self.windows = Windows(self.data.train.images_count, t.batch_size, t.grad_accumulation)
        total_steps = self.windows.count * t.epochs
        if t.max_steps is not None:
            total_steps = min(total_steps, t.max_steps)
        schedule: LRSchedule | PhasedSchedule
        if recipe.on:  # layer groups at their own rates; the model frozen for phase 1
            optimizer, schedule, _ = set_up_fine_tuning(
                model, t, device, total_steps, self.windows.count
            )
        else:
            optimizer = build_optimizer(model.parameters(), t, device)
            schedule = build_schedule(optimizer, t, total_steps, self.windows.count)
        self.state = TrainState(
            model=model,
            optimizer=optimizer,
            schedule=schedule,
            scaler=make_scaler(t, device),
            ema=WeightEMA(model, t.ema_decay) if t.ema_decay else None,
            stopping=EarlyStopping(t.monitor, t.early_stopping, t.min_delta),
            progress=ck.Progress(epoch=1, batch=0, step=0, total_steps=total_steps),
            device=device,
        )
        self.log = StepLog(device, log_every)
        self.clock = StepClock(device, t.batch_size)
        self.books = Accounting(
            self.compiled,
            # cuDNN autotunes on the first batch of each new shape (seen taking 50x a normal
            # step on an H200): like compilation, a one-off cost, not the run's speed.
            autotuning=device.type == "cuda" and torch.backends.cudnn.benchmark,
            steps_per_epoch=self.windows.count,
            train_images=self.data.train.images_count,
            val_images=self.data.val.images_count,
        )
        self.where = describe_device(device) + (f" ×{dist.world_size}" if dist.active else "")
        self.bad_steps = 0
        self.last_train_loss = math.nan
        self.diverged: tuple[int, float] | None = None
        self.last_batch: Batch | None = None
        if t.time_limit_s is not None and dist.active:
            raise UserError(
                "A time limit does not run data-parallel yet: the processes would end at "
                "different steps.",
                "Clear the time limit, or train in one process (world size 1).",
            )
        self.train_started = 0.0
        self.time_up = False

    @property
    def progress(self) -> ck.Progress:
        return self.state.progress

    @property
    def fine_tuning(self) -> bool:
        return isinstance(self.state.schedule, PhasedSchedule)

    def phase(self) -> str:
        """What the fine-tuning phase trains, in words ("" for a run without the recipe)."""
        schedule = self.state.schedule
        return schedule.describe if isinstance(schedule, PhasedSchedule) else ""

    def resume(self) -> None:
        if self.folder is None:
            raise UserError("This run cannot be resumed: it was started without checkpoints.")
        self.state.restore(self.folder)

    def started(self, run_id: int | None) -> RunStarted:
        train, val = self.data.train, self.data.val
        return RunStarted(
            run_id=run_id,
            device=self.where,
            epochs=self.t.epochs,
            steps_per_epoch=self.windows.count,
            total_steps=self.progress.total_steps,
            train_images=train.images_count,
            val_images=val.images_count,
            classes=tuple(self.data.prepared.classes),
            params=self.params,
            start_step=self.progress.step,
            data_on_device=train.resident,
            batch_size=self.t.batch_size,
            nvml_index=nvml_index(self.device),
            augment=self.data.augment,
            input_shape=(self.shape.channels, self.shape.height, self.shape.width),
            preprocess=self.data.prepared.report.preprocess_reason,
            fine_tune=tuple(phase_lines(self.t)) if self.fine_tuning else (),
            **self.cost,
        )

    # ------------------------------------------------------------------ epochs
    def epochs(self) -> Iterator[Event]:
        self.state.model.train()
        self.train_started = time.perf_counter()
        while self.progress.epoch <= self.t.epochs:
            epoch = self.progress.epoch
            start_batch = self.progress.batch
            sums = _Epoch.start(self.device, self.progress.epoch_totals if start_batch else {})
            epoch_start = time.perf_counter()
            if isinstance(self.state.schedule, PhasedSchedule):
                # At the head epochs' end: unfreeze, and restart the schedule for all layers.
                self.state.schedule.enter(epoch)
            if start_batch < self.windows.batches:  # else stopped in validation: validate
                yield from self.train_epoch(epoch, start_batch, sums)
            yield from self.end_epoch(epoch, sums, epoch_start)
            if self.t.max_steps is not None and self.progress.step >= self.t.max_steps:
                return
            if self.time_up or (self.t.time_limit_s is not None and self.time_fraction() >= 1):
                raise Completed(
                    f"Completed at its time limit of {self.t.time_limit_s:g} s after "
                    f"{self.progress.step} steps ({epoch} epochs), its rate annealed.",
                    time_limit_reached=True,
                )

    def time_fraction(self) -> float:
        """How much of ``time_limit_s`` is spent, one validation pass ahead (0 without one).

        The pass that follows the last step is counted in advance (its measured mean), so
        the run's final validation ends near the limit rather than one pass after it.
        """
        limit = self.t.time_limit_s
        if limit is None:
            return 0.0
        evals = self.books.eval_s
        ahead = sum(evals) / len(evals) if evals else 0.0
        return (time.perf_counter() - self.train_started + ahead) / limit

    def train_epoch(self, epoch: int, start_batch: int, sums: _Epoch) -> Iterator[Event]:
        t, state, progress = self.t, self.state, self.progress
        self.data.train.set_epoch(epoch, start_batch)
        batches = self._remembered(self.clock.timed(self.data.train))
        self.books.epoch_started()
        first = start_batch // t.grad_accumulation
        for window in range(first, self.windows.count):
            count = self.windows.micro_batches(window)
            out_of_memory = False
            try:
                result = train_step(
                    self.compiled.module,
                    self.ddp,
                    batches,
                    count,
                    self.windows.window_images(window),
                    t=t,
                    world_size=self.dist.world_size,
                    loss_weights=self.data.loss_weights,
                    scaler=state.scaler,
                )
                optimizer_step(t, state.model, state.optimizer, state.scaler)
            except Exception as exc:
                if is_out_of_memory(exc):
                    out_of_memory = True
                elif (sentence := nondeterministic_op(exc)) is not None:
                    raise sentence from None
                else:
                    raise
            if out_of_memory:  # out of the except block: the failed step's frames are freed
                yield from self.drain()
                raise self.out_of_memory()
            state.schedule.step_batch()
            if t.time_limit_s is not None:  # the schedule runs on time as well as on steps
                fraction = self.time_fraction()
                self.time_up = fraction >= 1.0
                if isinstance(state.schedule, LRSchedule):
                    state.schedule.advance_to(fraction)
            if state.ema is not None:
                state.ema.update()
            sums.loss += result.loss_sum
            sums.correct += result.correct
            sums.seen += result.images
            step_s, discard = self.books.step_ended(result.shape)
            self.clock.step_done(result.images, discard=discard)
            sums.train_s += step_s
            progress.step += 1
            progress.batch = min((window + 1) * t.grad_accumulation, self.windows.batches)
            progress.trained_images += result.images
            self.log.add(result.loss, self._logged(epoch, step_s, result.images, sums))
            if self.log.due:
                yield from self.report(self.log.read())
            yield from self.check_stop(epoch, sums)
            if t.max_steps is not None and progress.step >= t.max_steps:
                break
            if self.time_up:  # validate now, then complete (epochs() ends the run)
                break
            self.books.step_restarted()
        yield from self.drain()
        if self.dist.active:  # the ranks leave the epoch agreeing on divergence
            self._agree_on(False)

    def _remembered(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """The batches, keeping the last one for the out-of-memory probe."""
        for batch in batches:
            self.last_batch = batch
            yield batch

    def _logged(self, epoch: int, step_s: float, images: int, sums: _Epoch) -> LoggedStep:
        progress = self.progress
        return LoggedStep(
            step=progress.step,
            epoch=epoch,
            lr=self.state.schedule.lr,
            step_s=step_s,
            images=images,
            elapsed_s=self.books.elapsed_s,
            progress=progress.step / progress.total_steps,
            eta_s=self.books.eta_s(progress, sums.train_s),
        )

    # ------------------------------------------------------- losses to the host
    def report(self, read: list[tuple[LoggedStep, float]]) -> Iterator[Event]:
        """StepEnds for steps whose losses arrived, and the timing split of the window.

        Images per second are the steps' mean over the read: on a GPU a single step's host
        time is only its queuing time, and the mean over an interval is the device's.
        """
        if not read:
            return
        timed = [s for s, _ in read if s.step_s > 0]
        seconds = sum(s.step_s for s in timed)
        rate = sum(s.images for s in timed) / seconds if seconds > 0 else 0.0
        for step, loss in read:
            if math.isfinite(loss):
                self.bad_steps, self.last_train_loss = 0, loss
            else:
                self.bad_steps += 1
            yield StepEnd(
                step=step.step,
                epoch=step.epoch,
                loss=loss,
                lr=step.lr,
                images_per_s=rate if step.step_s > 0 else 0.0,
                elapsed_s=step.elapsed_s,
                progress=step.progress,
                eta_s=step.eta_s,
            )
            if self.bad_steps >= MAX_BAD_STEPS and self.diverged is None:
                self.diverged = (step.step, loss)
                if not self.dist.active:  # ranks end together, at their next agreement
                    raise self._diverged()
        if self.clock.due() and (timing := self.clock.report(read[-1][0].step)) is not None:
            yield timing

    def drain(self) -> Iterator[Event]:
        """Every pending loss to the host (before checkpoints, epoch ends and endings)."""
        yield from self.report(self.log.read(drain=True))
        timing = self.clock.report(self.progress.step)
        if timing is not None:
            yield timing

    def check_stop(self, epoch: int, sums: _Epoch) -> Iterator[Event]:
        """End the run after this step if asked to (or, under DDP, if any rank diverged)."""
        if self.dist.active:
            if self.progress.step % AGREE_EVERY:
                return
            stop = self._agree_on(self.should_stop())
        else:
            stop = self.should_stop()
        if not stop:
            return
        progress = self.progress
        yield from self.drain()
        progress.epoch, progress.epoch_totals = epoch, sums.as_dict()
        yield from self.save(ck.LAST, epoch)
        resumable = "; it can be resumed." if self.folder is not None else "."
        raise Stopped(f"Stopped by request at step {progress.step}{resumable}")

    def _agree_on(self, stop: bool) -> bool:
        """One all-reduce: whether any rank wants to stop, and whether any diverged."""
        stop, diverged = agree_flags(self.dist, stop, self.diverged is not None)
        if diverged:
            raise self._diverged()
        return stop

    def _diverged(self) -> Diverged:
        step, loss = self.diverged or (self.progress.step, math.nan)
        hint = "Lower the learning rate, or add gradient clipping, then train again."
        if self.folder is not None and ck.checkpoint_path(self.folder, ck.LAST).exists():
            hint += " The last good checkpoint (end of the previous epoch) is kept."
        return Diverged(f"The loss became {loss} at step {step} and stayed non-finite.", hint)

    # --------------------------------------------------------------- epoch end
    def end_epoch(self, epoch: int, sums: _Epoch, epoch_start: float) -> Iterator[Event]:
        """Validate, step the epoch schedule and early stopping, write checkpoints."""
        t, state, progress = self.t, self.state, self.progress
        eval_start = time.perf_counter()
        val_loss, val_acc = evaluate(state.evaluated, self.data.val, t, self.should_stop)
        eval_s = time.perf_counter() - eval_start
        if agree(self.dist, self.should_stop()):
            # Saved at the end of the epoch's batches, so a resume validates this epoch again
            # rather than skipping its validation, schedule step and early-stopping check.
            progress.epoch, progress.batch = epoch, self.windows.batches
            progress.epoch_totals = sums.as_dict()
            yield from self.save(ck.LAST, epoch)
            raise Stopped(f"Stopped by request during epoch {epoch}'s validation.")
        self.books.evaluated(eval_s)
        progress.train_time_s += sums.train_s
        metrics = {"val.accuracy": val_acc, "val.loss": val_loss}
        if math.isfinite(val_acc):
            progress.best_val_accuracy = max(progress.best_val_accuracy or 0.0, val_acc)
        state.schedule.step_epoch(metrics)
        stop_early = state.stopping.update(metrics)
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
            phase=self.phase(),
        )
        if state.stopping.improved:
            yield from self.save(ck.BEST, epoch)
        yield from self.save(ck.LAST, epoch)
        target = t.stop_at_accuracy
        if target is not None and math.isfinite(val_acc) and val_acc >= target:
            raise Completed(
                f"Completed after epoch {epoch}: validation accuracy {val_acc:.1%} reached "
                f"the target of {target:.1%}.",
                target_reached_epoch=epoch,
            )
        if stop_early:
            stopping = state.stopping
            raise Completed(
                f"Stopped early after epoch {epoch}: {t.monitor} did not improve for "
                f"{t.early_stopping} epochs (best {stopping.best:.4g} at epoch "
                f"{stopping.best_epoch}).",
                early_stopped_epoch=epoch,
            )

    def save(self, which: str, epoch: int) -> Iterator[CheckpointSaved]:
        if self.folder is None or not self.dist.is_main:
            return
        path, sha, size = self.state.save(self.folder, which)
        yield CheckpointSaved(which, str(path), sha, size, epoch, self.progress.step)

    # -------------------------------------------------------------- endings
    def out_of_memory(self) -> RanOutOfMemory:
        batch, self.last_batch = self.last_batch, None
        assert batch is not None
        message, hint, fits = probe_out_of_memory(
            self.t, self.compiled.module, self.state.optimizer, batch, self.dist.world_size
        )
        return RanOutOfMemory(message, hint, suggested_batch_size=fits)

    def finish(
        self, ended: RunEnded, run_id: int | None, weights_path: str | Path | None
    ) -> Iterator[Event]:
        """Test split, final weights and the summary, whatever ended the run."""
        state, progress, t = self.state, self.progress, self.t
        prepared = self.data.prepared
        summary: dict[str, object] = {
            "epochs": progress.epochs_done,
            "steps": progress.step,
            "best_val_accuracy": progress.best_val_accuracy,
            "best_epoch": state.stopping.best_epoch,
            "final_train_loss": (
                self.last_train_loss if math.isfinite(self.last_train_loss) else None
            ),
            "train_images_per_s": (
                progress.trained_images / progress.train_time_s
                if progress.train_time_s > 0
                else None
            ),
            "train_time_s": progress.train_time_s,
            "compile_s": self.compiled.compile_s if t.compile else None,
            "wall_time_s": self.books.elapsed_s,
            "device": self.where,
            "params": self.params,
            "classes": list(prepared.classes),
            "dataset_key": prepared.report.dataset_key,
            **ended.extra,
        }
        if self.fine_tuning:
            summary["fine_tune"] = phase_lines(t)
        if hasattr(state.model, "pretrained_report"):
            summary["pretrained"] = state.model.pretrained_report
        if self.data.normalize is not None:
            summary["normalize"] = self.data.normalize.as_dict()
        final = state.evaluated
        if self.data.test is not None and ended.status == st.COMPLETED:
            test = evaluate(final, self.data.test, t, self.should_stop)
            summary["test_loss"], summary["test_accuracy"] = test
        if (
            weights_path is not None
            and self.dist.is_main
            and progress.step > 0
            and ended.status != st.FAILED
        ):
            try:
                saved = save_weights(final, weights_path, self.shape, list(prepared.classes))
            except OSError as exc:  # training's result stands; say why there are no weights
                summary["weights_error"] = f"The weights could not be saved: {exc}."
            else:
                yield WeightsSaved(str(saved.path), saved.sha256, saved.bytes)
        yield RunFinished(
            run_id=run_id,
            status=ended.status,
            reason=ended.reason,
            hint=ended.hint,
            summary=summary,
        )
